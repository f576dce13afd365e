"""What the account owns and where its AMIs are used, read page by page from EC2 and Auto Scaling.

Every function takes ready boto3 clients for one account and region (the caller builds them with
its retry configuration) and returns the plain types of `bot.images`. Every list call goes through
a paginator, so nothing on page 2 or later is missed, and the number of calls grows with the number
of pages, never with the number of AMIs. botocore errors leave as one readable `AwsError`.

`find_uses` is what keeps prune and deregister from deleting an image that is still needed, so it
errs on the side of "in use": it reads every launch template version (not only $Default/$Latest),
counts instances that are still shutting down, includes resources managed by AWS services, and
reports every reference it cannot resolve in `Usage.unresolved` instead of dropping it. A refused
list call (for example AccessDenied on Auto Scaling) raises; it never reads as "nothing in use".
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

from botocore.exceptions import BotoCoreError, ClientError

from bot.aws.errors import translate
from bot.images import Image, Snapshot, Use, UseKind

if TYPE_CHECKING:
    from mypy_boto3_autoscaling import AutoScalingClient
    from mypy_boto3_autoscaling.type_defs import AutoScalingGroupTypeDef, LaunchTemplateSpecificationTypeDef
    from mypy_boto3_ec2 import EC2Client
    from mypy_boto3_ec2.type_defs import (
        DescribeLaunchTemplateVersionsRequestPaginateTypeDef,
        DescribeLaunchTemplateVersionsResultTypeDef,
        FilterTypeDef,
        ImageTypeDef,
    )

__all__ = ["Usage", "find_uses", "images_by_id", "instance_image_ids", "own_images"]

# Largest page each list call allows; AWS may still return fewer items and a NextToken.
IMAGES_PAGE = 1000
INSTANCES_PAGE = 1000
TEMPLATES_PAGE = 200
AUTOSCALING_PAGE = 100
# Values per `image-id` filter in one DescribeImages call.
IDS_PER_CALL = 200

# Every instance state but "terminated". A shutting-down instance counts as in use: it still exists,
# and keeping its AMI one more prune run costs little, while a wrong "unused" loses an image.
LIVE_INSTANCE_STATES = ("pending", "running", "shutting-down", "stopping", "stopped")

SSM_PREFIX = "resolve:ssm:"

T = TypeVar("T")


@dataclass(frozen=True)
class Usage:
    """Where AMIs are used. `uses`: AMI id -> places (sorted); `unresolved`: references amibot could
    not follow (a caller must not prune blindly while this is non-empty); `calls`: AWS calls made."""

    uses: dict[str, tuple[Use, ...]]
    unresolved: tuple[str, ...] = ()
    calls: int = 0


# ---------------------------------------------------------------------------------------------------
# Images


def own_images(ec2: EC2Client, region: str, filters: Sequence[FilterTypeDef] = ()) -> list[Image]:
    """Every image the account owns in `region` (that matches `filters`, EC2's own filters such as
    `name` or `tag:KEY`), disabled ones included (their snapshots still cost)."""
    paginator = ec2.get_paginator("describe_images")
    params: dict[str, Any] = {
        "Owners": ["self"],
        "IncludeDisabled": True,
        "PaginationConfig": {"PageSize": IMAGES_PAGE},
    }
    if filters:
        params["Filters"] = list(filters)
    with _aws_errors(region, "list images"):
        pages = paginator.paginate(**params)
        return [_image(raw, region) for page in pages for raw in page.get("Images", [])]


def images_by_id(
    ec2: EC2Client, region: str, image_ids: Iterable[str], *, owners: Sequence[str] | None = None
) -> dict[str, Image]:
    """The given images that exist in `region` (owned by `owners`, if given); unknown ids are absent.

    Uses the `image-id` filter (which skips unknown ids) rather than `ImageIds=` (which fails the
    whole call), `IDS_PER_CALL` ids per call.
    """
    wanted = list(dict.fromkeys(image_ids))
    paginator = ec2.get_paginator("describe_images")
    found: dict[str, Image] = {}
    with _aws_errors(region, "describe images"):
        for chunk in _chunks(wanted, IDS_PER_CALL):
            params: dict[str, Any] = {
                "Filters": [{"Name": "image-id", "Values": chunk}],
                "IncludeDeprecated": True,
                "IncludeDisabled": True,
                "PaginationConfig": {"PageSize": IMAGES_PAGE},
            }
            if owners:
                params["Owners"] = list(owners)
            pages = paginator.paginate(**params)
            for page in pages:
                for raw in page.get("Images", []):
                    image = _image(raw, region)
                    found[image.image_id] = image
    return found


def _image(raw: ImageTypeDef, region: str) -> Image:
    return Image(
        image_id=raw["ImageId"],
        name=raw.get("Name", ""),
        state=raw.get("State", ""),
        # never absent in practice; if it were, "now" keeps the image from looking old enough to prune
        creation_date=_time(raw.get("CreationDate")) or datetime.now(UTC),
        region=region,
        owner_id=raw.get("OwnerId", ""),
        description=raw.get("Description", ""),
        tags={tag["Key"]: tag.get("Value", "") for tag in raw.get("Tags", []) if "Key" in tag},
        snapshots=tuple(
            Snapshot(ebs["SnapshotId"], ebs.get("VolumeSize", 0), mapping.get("DeviceName", ""))
            for mapping in raw.get("BlockDeviceMappings", [])
            if (ebs := mapping.get("Ebs")) and "SnapshotId" in ebs
        ),
        # "enabled", "enabled-with-cooldown" or "disabled" (absent: disabled)
        deregistration_protection=raw.get("DeregistrationProtection", "").startswith("enabled"),
        deprecation_time=_time(raw.get("DeprecationTime")),
        last_launched=_time(raw.get("LastLaunchedTime")),
        public=raw.get("Public", False),
    )


def _time(text: str | None) -> datetime | None:
    """AWS's ISO 8601 strings ("2026-11-27T09:30:00.000Z") as aware UTC datetimes."""
    if not text:
        return None
    moment = datetime.fromisoformat(text)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


# ---------------------------------------------------------------------------------------------------
# Where images are used


def find_uses(
    ec2: EC2Client,
    autoscaling: AutoScalingClient,
    region: str,
    image_ids: Iterable[str] | None = None,
) -> Usage:
    """Every non-terminated instance, launch template version, launch configuration and auto scaling
    group that uses an AMI, read by pages (never per AMI). With `image_ids`, only those AMIs are kept
    in `uses`; `unresolved` always lists every reference that could not be followed."""
    calls = _Counter()
    found = _Found()
    with _aws_errors(region, "list instances"):
        _add_instances(ec2, calls, found)
    with _aws_errors(region, "list launch templates"):
        templates = _read_templates(ec2, calls)
    for version in templates.versions.values():
        found.add(version.image_id, Use(UseKind.LAUNCH_TEMPLATE, version.ref, templates.labels(version)))
    with _aws_errors(region, "list launch configurations"):
        configurations = _launch_configurations(autoscaling, calls)
    for name, image_id in configurations.items():
        found.add(image_id, Use(UseKind.LAUNCH_CONFIGURATION, name))
    with _aws_errors(region, "list auto scaling groups"):
        _add_groups(autoscaling, calls, templates, configurations, found)
    return found.usage(calls.count, None if image_ids is None else set(image_ids))


class _Counter:
    """Counts pages as they are read: one page is one AWS call."""

    def __init__(self) -> None:
        self.count = 0

    def pages(self, pages: Iterable[T]) -> Iterator[T]:
        for page in pages:
            self.count += 1
            yield page


class _Found:
    """Collects uses (deduplicated) and unresolved references."""

    def __init__(self) -> None:
        self._uses: dict[str, dict[Use, None]] = {}
        self._unresolved: dict[str, None] = {}

    def add(self, image_id: str, use: Use) -> None:
        if image_id.startswith(SSM_PREFIX):
            self.unresolved(f"{use.describe()}: image {image_id} could not be resolved")
        elif image_id:
            self._uses.setdefault(image_id, {})[use] = None

    def unresolved(self, text: str) -> None:
        self._unresolved[text] = None

    def usage(self, calls: int, keep: set[str] | None) -> Usage:
        uses = {
            image_id: tuple(sorted(places, key=_use_order))
            for image_id, places in sorted(self._uses.items())
            if keep is None or image_id in keep
        }
        return Usage(uses=uses, unresolved=tuple(sorted(self._unresolved)), calls=calls)


_KINDS = tuple(UseKind)


def _use_order(use: Use) -> tuple[int, tuple[tuple[int, str], ...], str]:
    return _KINDS.index(use.kind), _natural(use.ref), use.detail


def _natural(text: str) -> tuple[tuple[int, str], ...]:
    """Sort key that puts "lt-1 v9" before "lt-1 v10"."""
    return tuple((int(part), "") if part.isdigit() else (-1, part) for part in re.split(r"(\d+)", text))


# ---- instances


def instance_image_ids(ec2: EC2Client, region: str) -> set[str]:
    """AMIs that non-terminated instances run, from one paginated DescribeInstances sweep (the cheap
    part of `find_uses`: no launch templates, launch configurations or auto scaling groups)."""
    calls = _Counter()
    found = _Found()
    with _aws_errors(region, "list instances"):
        _add_instances(ec2, calls, found)
    return set(found.usage(calls.count, None).uses)


def _add_instances(ec2: EC2Client, calls: _Counter, found: _Found) -> None:
    pages = ec2.get_paginator("describe_instances").paginate(
        Filters=[{"Name": "instance-state-name", "Values": list(LIVE_INSTANCE_STATES)}],
        IncludeManagedResources=True,
        PaginationConfig={"PageSize": INSTANCES_PAGE},
    )
    for page in calls.pages(pages):
        for reservation in page.get("Reservations", []):
            for instance in reservation.get("Instances", []):
                state = instance.get("State", {}).get("Name", "")
                found.add(instance.get("ImageId", ""), Use(UseKind.INSTANCE, instance["InstanceId"], state))


# ---- launch templates


@dataclass(frozen=True)
class _Version:
    template_id: str
    number: int
    image_id: str  # "" when the version names no image

    @property
    def ref(self) -> str:
        return f"{self.template_id} v{self.number}"


@dataclass(frozen=True)
class _Template:
    template_id: str
    name: str
    default: int
    latest: int


class _Unresolved(Exception):
    """A reference that cannot be followed; the message says which."""


@dataclass
class _Templates:
    """Every launch template and every one of its versions."""

    by_id: dict[str, _Template] = field(default_factory=dict)
    ids_by_name: dict[str, str] = field(default_factory=dict)
    versions: dict[tuple[str, int], _Version] = field(default_factory=dict)

    def add_template(self, template: _Template) -> None:
        self.by_id[template.template_id] = template
        self.ids_by_name[template.name] = template.template_id

    def add_version(self, version: _Version) -> None:
        self.versions[(version.template_id, version.number)] = version

    def has_every_version(self, template: _Template) -> bool:
        """Whether versions 1..latest are all known (a deleted version makes this False)."""
        return all((template.template_id, n) in self.versions for n in range(1, template.latest + 1))

    def labels(self, version: _Version) -> str:
        """Which of $Default and $Latest this version is: one, both ("$Default, $Latest") or ""."""
        template = self.by_id.get(version.template_id)
        if template is None:
            return ""
        marks = (("$Default", template.default), ("$Latest", template.latest))
        return ", ".join(label for label, number in marks if number == version.number)

    def version_for(self, spec: LaunchTemplateSpecificationTypeDef) -> _Version:
        """The version an auto scaling group's template spec means (no Version: $Default)."""
        template_id = spec.get("LaunchTemplateId") or self.ids_by_name.get(spec.get("LaunchTemplateName", ""))
        template = self.by_id.get(template_id or "")
        if template is None:
            named = spec.get("LaunchTemplateId") or repr(spec.get("LaunchTemplateName", ""))
            raise _Unresolved(f"launch template {named} not found")
        wanted = spec.get("Version") or "$Default"
        numbers = {"$Default": template.default, "$Latest": template.latest}
        if wanted not in numbers and not wanted.isdigit():
            raise _Unresolved(f"launch template {template.template_id} version {wanted!r} is not understood")
        number = numbers[wanted] if wanted in numbers else int(wanted)
        version = self.versions.get((template.template_id, number))
        if version is None:
            raise _Unresolved(f"launch template {template.template_id} version {number} not found")
        return version


def _read_templates(ec2: EC2Client, calls: _Counter) -> _Templates:
    """Templates, then their versions: $Default and $Latest of all templates in one paginated sweep,
    and a listing of all versions only for the templates that have more versions than those."""
    templates = _Templates()
    pages = ec2.get_paginator("describe_launch_templates").paginate(
        IncludeManagedResources=True, PaginationConfig={"PageSize": TEMPLATES_PAGE}
    )
    for page in calls.pages(pages):
        for raw in page.get("LaunchTemplates", []):
            templates.add_template(
                _Template(
                    raw["LaunchTemplateId"],
                    raw.get("LaunchTemplateName", ""),
                    raw.get("DefaultVersionNumber", 0),
                    raw.get("LatestVersionNumber", 0),
                )
            )
    if not templates.by_id:
        return templates
    _add_versions(templates, calls.pages(_version_pages(ec2, template_id=None)))
    for template in list(templates.by_id.values()):
        if not templates.has_every_version(template):
            _add_versions(templates, calls.pages(_version_pages(ec2, template_id=template.template_id)))
    return templates


def _version_pages(
    ec2: EC2Client, template_id: str | None
) -> Iterable[DescribeLaunchTemplateVersionsResultTypeDef]:
    """All versions of one template, or (template_id None) $Default and $Latest of every template.

    ResolveAlias: a `resolve:ssm:` ImageId comes back as the AMI id the parameter points to now.
    """
    request: DescribeLaunchTemplateVersionsRequestPaginateTypeDef = {
        "ResolveAlias": True,
        "IncludeManagedResources": True,
        "PaginationConfig": {"PageSize": TEMPLATES_PAGE},
    }
    if template_id is None:
        request["Versions"] = ["$Default", "$Latest"]
    else:
        request["LaunchTemplateId"] = template_id
    return ec2.get_paginator("describe_launch_template_versions").paginate(**request)


def _add_versions(
    templates: _Templates, pages: Iterable[DescribeLaunchTemplateVersionsResultTypeDef]
) -> None:
    for page in pages:
        for raw in page.get("LaunchTemplateVersions", []):
            image_id = raw.get("LaunchTemplateData", {}).get("ImageId", "")
            templates.add_version(
                _Version(raw.get("LaunchTemplateId", ""), raw.get("VersionNumber", 0), image_id)
            )


# ---- auto scaling


def _launch_configurations(autoscaling: AutoScalingClient, calls: _Counter) -> dict[str, str]:
    """Launch configuration name -> AMI id."""
    pages = autoscaling.get_paginator("describe_launch_configurations").paginate(
        PaginationConfig={"PageSize": AUTOSCALING_PAGE}
    )
    return {
        config["LaunchConfigurationName"]: config.get("ImageId", "")
        for page in calls.pages(pages)
        for config in page.get("LaunchConfigurations", [])
    }


def _add_groups(
    autoscaling: AutoScalingClient,
    calls: _Counter,
    templates: _Templates,
    configurations: Mapping[str, str],
    found: _Found,
) -> None:
    pages = autoscaling.get_paginator("describe_auto_scaling_groups").paginate(
        IncludeInstances=False, PaginationConfig={"PageSize": AUTOSCALING_PAGE}
    )
    for page in calls.pages(pages):
        for group in page.get("AutoScalingGroups", []):
            _add_group(group, templates, configurations, found)


def _add_group(
    group: AutoScalingGroupTypeDef,
    templates: _Templates,
    configurations: Mapping[str, str],
    found: _Found,
) -> None:
    """The AMIs a group launches: its launch configuration, its launch template, and the template
    and images of its mixed instances policy and of every override. Resolved from what was listed."""
    name = group["AutoScalingGroupName"]

    def use(detail: str) -> Use:
        return Use(UseKind.AUTO_SCALING_GROUP, name, detail)

    if config := group.get("LaunchConfigurationName"):
        if config in configurations:
            found.add(configurations[config], use(f"via launch configuration {config}"))
        else:
            found.unresolved(f"auto scaling group {name}: launch configuration {config} not found")
    policy = group.get("MixedInstancesPolicy", {}).get("LaunchTemplate", {})
    specs = [group.get("LaunchTemplate"), policy.get("LaunchTemplateSpecification")]
    for override in policy.get("Overrides", []):
        specs.append(override.get("LaunchTemplateSpecification"))
        if image_id := override.get("ImageId"):
            found.add(image_id, use("via override image"))
    for spec in specs:
        if not spec:
            continue
        try:
            version = templates.version_for(spec)
        except _Unresolved as problem:
            found.unresolved(f"auto scaling group {name}: {problem}")
        else:
            found.add(version.image_id, use(f"via {version.ref}"))


# ---------------------------------------------------------------------------------------------------
# Helpers


@contextmanager
def _aws_errors(region: str, action: str) -> Iterator[None]:
    """Turn botocore failures inside the block into one readable `AwsError`."""
    try:
        yield
    except (ClientError, BotoCoreError) as error:
        raise translate(error, region=region, action=action) from error


def _chunks(items: Sequence[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield list(items[start : start + size])
