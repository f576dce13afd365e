"""The AWS regions amibot recognises, from botocore's bundled partition data (a small local file;
loading botocore's full endpoint data instead would cost every process ~20 MiB)."""

from __future__ import annotations

import functools
import json
from importlib import resources

__all__ = ["PARTITIONS", "known_regions"]

#: Commercial, China and GovCloud. The isolated partitions (aws-iso*) are not offered.
PARTITIONS = ("aws", "aws-cn", "aws-us-gov")


@functools.lru_cache(maxsize=1)
def known_regions() -> frozenset[str]:
    """Every region of `PARTITIONS` that botocore knows. No network; read once, then cached."""
    data = json.loads((resources.files("botocore") / "data" / "partitions.json").read_text(encoding="utf-8"))
    return frozenset(
        region
        for partition in data.get("partitions", [])
        if partition.get("id") in PARTITIONS
        for region in partition.get("regions", {})
        if not region.endswith("-global")
    )
