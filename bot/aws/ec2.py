"""EC2 operations amibot performs, one method per AWS action, errors as one readable line."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from bot.aws import inventory
from bot.aws.clients import AwsClients
from bot.aws.errors import translate
from bot.errors import AwsError
from bot.images import Image

JOB_TAG = "amibot:job"
REQUESTER_TAG = "amibot:requested-by"
# Instances offered by the create form's picker (Slack shows at most 100 options).
INSTANCE_PICKER_PAGE = 100
_INSTANCE_ID = re.compile(r"i-(?:[0-9a-f]{8}|[0-9a-f]{17})")


@dataclass(frozen=True)
class InstanceSummary:
    instance_id: str
    name: str
    state: str
    instance_type: str = ""

    def matches(self, query: str) -> bool:
        q = query.strip().lower()
        return not q or q in self.name.lower() or self.instance_id.startswith(q)


@contextmanager
def aws_errors(region: str, action: str) -> Iterator[None]:
    try:
        yield
    except Exception as exc:
        raise translate(exc, region=region, action=action) from exc


class Ec2:
    def __init__(self, clients: AwsClients) -> None:
        self._clients = clients

    def instance_name(self, account: str | None, region: str, instance_id: str) -> str:
        """The instance's Name tag, or its id when it has none."""
        ec2 = self._clients.ec2(account, region)
        with aws_errors(region, "describe the instance"):
            reservations = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"]
        for reservation in reservations:
            for instance in reservation.get("Instances", []):
                if instance.get("State", {}).get("Name") == "terminated":
                    raise translate_missing("instance", instance_id, region, "is terminated")
                for tag in instance.get("Tags", []):
                    if tag.get("Key") == "Name" and tag.get("Value"):
                        return str(tag["Value"])
                return instance_id
        raise translate_missing("instance", instance_id, region)

    def image_for_job(self, account: str | None, region: str, job_id: str) -> str | None:
        """The image a job already created (a retried CreateImage must not make a second one)."""
        ec2 = self._clients.ec2(account, region)
        with aws_errors(region, "look up the job's image"):
            images = ec2.describe_images(
                Owners=["self"], Filters=[{"Name": f"tag:{JOB_TAG}", "Values": [job_id]}]
            )
        found = sorted(images.get("Images", []), key=lambda i: i.get("CreationDate", ""))
        return str(found[0]["ImageId"]) if found else None

    def image_named(self, account: str | None, region: str, name: str) -> tuple[str, str] | None:
        """The own image called `name` (names are unique per account and region) and the job that
        made it ("" if none did), or None when DescribeImages does not show one (yet)."""
        ec2 = self._clients.ec2(account, region)
        with aws_errors(region, "look up the image name"):
            images = ec2.describe_images(Owners=["self"], Filters=[{"Name": "name", "Values": [name]}])
        for image in images.get("Images", []):
            tags = {t.get("Key"): t.get("Value") for t in image.get("Tags", [])}
            return str(image["ImageId"]), str(tags.get(JOB_TAG) or "")
        return None

    def create_image(
        self,
        account: str | None,
        region: str,
        *,
        instance_id: str,
        name: str,
        description: str | None,
        reboot: bool,
        tags: Mapping[str, str],
    ) -> str:
        ec2 = self._clients.ec2(account, region)
        tag_list = [{"Key": k, "Value": v} for k, v in tags.items()]
        params: dict[str, Any] = {
            "InstanceId": instance_id,
            "Name": name,
            "NoReboot": not reboot,
            "TagSpecifications": [{"ResourceType": "image", "Tags": tag_list}],
        }
        if description:
            params["Description"] = description
        with aws_errors(region, "create the image"):
            return str(ec2.create_image(**params)["ImageId"])

    def copy_image(
        self,
        account: str | None,
        region: str,
        *,
        source_image_id: str,
        source_region: str,
        name: str,
        description: str | None,
        encrypted: bool,
        kms_key: str | None,
        client_token: str,
    ) -> str:
        """CopyImage, called in the destination `region`. The same `client_token` with the same
        parameters returns the first call's image instead of making a second copy."""
        ec2 = self._clients.ec2(account, region)
        params: dict[str, Any] = {
            "SourceImageId": source_image_id,
            "SourceRegion": source_region,
            "Name": name,
            "CopyImageTags": True,
            "ClientToken": client_token,
        }
        if description:
            params["Description"] = description
        if encrypted:
            params["Encrypted"] = True
            if kms_key:
                params["KmsKeyId"] = kms_key
        with aws_errors(region, f"copy {source_image_id} from {source_region}"):
            return str(ec2.copy_image(**params)["ImageId"])

    def tag_resource(
        self, account: str | None, region: str, resource_id: str, tags: Mapping[str, str]
    ) -> None:
        """Set several tags on one resource in one CreateTags call."""
        ec2 = self._clients.ec2(account, region)
        with aws_errors(region, f"tag {resource_id}"):
            ec2.create_tags(Resources=[resource_id], Tags=[{"Key": k, "Value": v} for k, v in tags.items()])

    def images(self, account: str | None, region: str, image_ids: Sequence[str]) -> dict[str, Image]:
        """Images by id, batched (one DescribeImages per 200 ids); missing ids are absent."""
        ec2 = self._clients.ec2(account, region)
        return inventory.images_by_id(ec2, region, image_ids)

    def own_image(self, account: str | None, region: str, image_id: str) -> Image | None:
        """The image if it exists and the account owns it."""
        ec2 = self._clients.ec2(account, region)
        return inventory.images_by_id(ec2, region, [image_id], owners=["self"]).get(image_id)

    def own_images(
        self,
        account: str | None,
        region: str,
        *,
        name_pattern: str | None = None,
        tags: Sequence[tuple[str, str]] = (),
    ) -> list[Image]:
        """The account's images in `region`, every page; only those whose name matches `name_pattern`
        (EC2's wildcards * and ?) and that carry every tag of `tags`, when given (EC2 filters)."""
        filters: list[Any] = [{"Name": "name", "Values": [name_pattern]}] if name_pattern else []
        filters += [{"Name": f"tag:{key}", "Values": [value]} for key, value in tags]
        return inventory.own_images(self._clients.ec2(account, region), region, filters)

    def instance_image_ids(self, account: str | None, region: str) -> set[str]:
        """AMIs that non-terminated instances run (one paginated DescribeInstances sweep)."""
        return inventory.instance_image_ids(self._clients.ec2(account, region), region)

    def find_instances(
        self, account: str | None, region: str, query: str, *, limit: int = INSTANCE_PICKER_PAGE
    ) -> list[InstanceSummary]:
        """Non-terminated instances whose Name tag contains `query` or whose id starts with it, for a
        picker Slack waits on: ONE page of at most `limit` from a client with short timeouts and no
        retries (a picker shows the first matches; typing more narrows them)."""
        q = query.strip()
        filters: list[Any] = [{"Name": "instance-state-name", "Values": list(inventory.LIVE_INSTANCE_STATES)}]
        if _INSTANCE_ID.fullmatch(q):
            filters.append({"Name": "instance-id", "Values": [q]})
        elif q and not q.startswith("i-"):
            # tag filters are case-sensitive: ask for the common spellings of the text (ORed)
            spellings = dict.fromkeys((q, q.lower(), q.upper(), q.capitalize(), q.title()))
            filters.append({"Name": "tag:Name", "Values": [f"*{s}*" for s in spellings]})
        ec2 = self._clients.ec2_quick(account, region)
        with aws_errors(region, "list instances"):
            page = ec2.describe_instances(Filters=filters, MaxResults=max(5, min(1000, limit)))
        found: list[InstanceSummary] = []
        for reservation in page.get("Reservations", []):
            for raw in reservation.get("Instances", []):
                name = next((t.get("Value", "") for t in raw.get("Tags", []) if t.get("Key") == "Name"), "")
                summary = InstanceSummary(
                    instance_id=raw["InstanceId"],
                    name=name,
                    state=raw.get("State", {}).get("Name", ""),
                    instance_type=raw.get("InstanceType", ""),
                )
                if summary.matches(q):
                    found.append(summary)
        return sorted(found, key=lambda i: (i.name.lower() or "~", i.instance_id))[:limit]

    def uses(
        self, account: str | None, region: str, image_ids: Sequence[str] | None = None
    ) -> inventory.Usage:
        """Where AMIs are used: instances, launch template versions, launch configurations, ASGs."""
        return inventory.find_uses(
            self._clients.ec2(account, region), self._clients.autoscaling(account, region), region, image_ids
        )

    def deregister(
        self, account: str | None, region: str, image_id: str, *, delete_snapshots: bool
    ) -> dict[str, str]:
        """DeregisterImage; with `delete_snapshots`, asks AWS to delete the snapshots too (AWS keeps
        those another AMI uses). Returns what AWS reported per snapshot (may be empty)."""
        ec2 = self._clients.ec2(account, region)
        params: dict[str, Any] = {"ImageId": image_id}
        if delete_snapshots:
            params["DeleteAssociatedSnapshots"] = True
        with aws_errors(region, f"deregister {image_id}"):
            response = ec2.deregister_image(**params)
        return {
            str(r.get("SnapshotId")): str(r.get("ReturnCode", ""))
            for r in response.get("DeleteSnapshotResults", [])
            if r.get("SnapshotId")
        }

    def existing_snapshots(self, account: str | None, region: str, snapshot_ids: Sequence[str]) -> set[str]:
        """Which of these snapshots still exist (filter, so unknown ids are not an error)."""
        if not snapshot_ids:
            return set()
        ec2 = self._clients.ec2(account, region)
        found: set[str] = set()
        paginator = ec2.get_paginator("describe_snapshots")
        with aws_errors(region, "describe snapshots"):
            for start in range(0, len(snapshot_ids), 200):
                chunk = list(snapshot_ids[start : start + 200])
                for page in paginator.paginate(
                    OwnerIds=["self"], Filters=[{"Name": "snapshot-id", "Values": chunk}]
                ):
                    found.update(s["SnapshotId"] for s in page.get("Snapshots", []))
        return found

    def delete_snapshot(self, account: str | None, region: str, snapshot_id: str) -> None:
        ec2 = self._clients.ec2(account, region)
        with aws_errors(region, f"delete snapshot {snapshot_id}"):
            ec2.delete_snapshot(SnapshotId=snapshot_id)

    def tag_image(self, account: str | None, region: str, image_id: str, key: str, value: str | None) -> None:
        """Set (value given) or remove (None) one tag on an image."""
        ec2 = self._clients.ec2(account, region)
        with aws_errors(region, f"tag {image_id}"):
            if value is None:
                ec2.delete_tags(Resources=[image_id], Tags=[{"Key": key}])
            else:
                ec2.create_tags(Resources=[image_id], Tags=[{"Key": key, "Value": value}])


def translate_missing(noun: str, ident: str, region: str, why: str = "not found") -> AwsError:
    return AwsError(f"{noun} {ident} {why} in {region}", code="NotFound")
