"""The AWS regions amibot recognises, from botocore's bundled endpoint data (a local file)."""

from __future__ import annotations

import functools

import botocore.session

__all__ = ["PARTITIONS", "known_regions"]

#: Commercial, China and GovCloud. The isolated partitions (aws-iso*) are not offered.
PARTITIONS = ("aws", "aws-cn", "aws-us-gov")


@functools.lru_cache(maxsize=1)
def known_regions() -> frozenset[str]:
    """Every EC2 region botocore knows in `PARTITIONS`. No network; read once, then cached."""
    session = botocore.session.get_session()
    regions: set[str] = set()
    for partition in PARTITIONS:
        regions.update(session.get_available_regions("ec2", partition_name=partition))
    return frozenset(regions)
