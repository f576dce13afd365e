"""Deleting the snapshots of deregistered AMIs, never one another AMI still uses, never
reporting a failed delete as deleted. Shared by deregistration and prune."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping

from bot.aws.ec2 import Ec2
from bot.errors import AwsError
from bot.images import Image

IN_USE_RETRIES = 12  # InvalidSnapshot.InUse while a deregistration settles: try again later


def shared_with(
    images: Iterable[Image], gone: Collection[str], snapshot_ids: Iterable[str]
) -> dict[str, str]:
    """Snapshot id -> an image (not in `gone`) that still uses it (pure)."""
    wanted = set(snapshot_ids)
    shared: dict[str, str] = {}
    for image in images:
        if image.image_id in gone:
            continue
        for snap in image.snapshots:
            if snap.snapshot_id in wanted:
                shared.setdefault(snap.snapshot_id, image.image_id)
    return shared


def delete_unshared(
    ec2: Ec2,
    account: str | None,
    region: str,
    snapshot_ids: list[str],
    *,
    shared: Mapping[str, str],
    deleted_by_aws: Mapping[str, str],
    attempt: int,
) -> tuple[dict[str, str], list[str]]:
    """Delete what no other image uses. Returns (snapshot -> outcome, snapshots to retry later)."""
    outcomes: dict[str, str] = {}
    retry: list[str] = []
    existing = ec2.existing_snapshots(account, region, snapshot_ids) if snapshot_ids else set()
    for snapshot_id in snapshot_ids:
        if snapshot_id in shared:
            outcomes[snapshot_id] = f"kept: still used by {shared[snapshot_id]}"
        elif snapshot_id not in existing:
            by_aws = deleted_by_aws.get(snapshot_id) == "success"
            outcomes[snapshot_id] = "deleted" if by_aws else "deleted (already gone)"
        else:
            try:
                ec2.delete_snapshot(account, region, snapshot_id)
                outcomes[snapshot_id] = "deleted"
            except AwsError as exc:
                if exc.code == "InvalidSnapshot.NotFound":
                    outcomes[snapshot_id] = "deleted (already gone)"
                elif (exc.code == "InvalidSnapshot.InUse" or exc.retryable) and attempt < IN_USE_RETRIES:
                    retry.append(snapshot_id)
                else:
                    outcomes[snapshot_id] = f"failed: {exc.message}"
    return outcomes, retry
