"""A pagination-faithful stand-in for the EC2 and Auto Scaling list calls that prune planning makes.

moto cannot stand in at this size: it answers DescribeImages in one page whatever MaxResults says,
and DescribeLaunchTemplates / DescribeLaunchTemplateVersions cut the list at MaxResults without a
NextToken (so a 500-template account looks like a 200-template one). This answers like AWS: pages
of at most the API's maximum (or the MaxResults asked for, if smaller), chained by NextToken.

It plugs into real boto3 clients the way botocore's Stubber does: the request is built and validated
by botocore as usual, then a `before-call` handler returns the parsed page (no HTTP, no XML), and
`after-call` hooks (amibot's call counter) still fire. Only the read calls of prune planning exist.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
from botocore.awsrequest import AWSResponse

ACCOUNT = "123456789012"
# The most items one page may hold, per AWS's API reference (DescribeImages returns everything in
# one answer when MaxResults is not given; amibot always gives it).
PAGE_LIMITS = {
    "DescribeImages": 1000,
    "DescribeInstances": 1000,
    "DescribeLaunchTemplates": 200,
    "DescribeLaunchTemplateVersions": 200,
    "DescribeAutoScalingGroups": 100,
    "DescribeLaunchConfigurations": 100,
}


@dataclass
class Account:
    """One region of a generated account, in the shapes botocore parses AWS's answers into."""

    images: list[dict[str, Any]] = field(default_factory=list)
    instances: list[dict[str, Any]] = field(default_factory=list)  # each with its "ReservationId"
    templates: list[dict[str, Any]] = field(default_factory=list)
    versions: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # template id -> versions
    configurations: list[dict[str, Any]] = field(default_factory=list)
    groups: list[dict[str, Any]] = field(default_factory=list)

    def live_instances(self) -> list[dict[str, Any]]:
        return [i for i in self.instances if i["State"]["Name"] != "terminated"]


def generate(
    *,
    images: int = 10_000,
    instances: int = 2_000,
    templates: int = 500,
    versions: int = 10,
    groups: int = 100,
    configurations: int = 20,
    families: int = 250,
    seed: int = 42,
    now: datetime | None = None,
) -> Account:
    """A large, messy account: families of versioned AMIs over a year and a half, a few failed or
    pending, some protected, snapshots (some shared); instances in every state; launch templates
    whose versions point at older and newer AMIs; auto scaling groups using templates ($Default,
    $Latest, a number, mixed instances policies with overrides) and launch configurations."""
    rnd = random.Random(seed)
    now = now or datetime.now(UTC)
    acc = Account()
    per_family = images // families
    snap = 0
    for n in range(images):
        family, index = divmod(n, per_family)
        age = timedelta(days=(per_family - index) * 540 / per_family, hours=rnd.uniform(0, 12))
        created = now - age
        state = "available"
        roll = rnd.random()
        if roll < 0.02:
            state = "failed"
        elif roll < 0.03 and age < timedelta(days=14):
            state = "pending"
        tags = [{"Key": "team", "Value": f"team{family % 17}"}]
        if family % 10 == 0:
            tags.append({"Key": "amibot:family", "Value": f"tagged-family-{family}"})
        if rnd.random() < 0.02:
            tags.append({"Key": "amibot:keep", "Value": "audit"})
        mappings = []
        for device in range(rnd.choice((1, 1, 1, 2, 3))):
            snap += 1
            shared = n > 0 and rnd.random() < 0.05  # reuses the previous image's root snapshot
            snapshot_id = (
                acc.images[-1]["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"]
                if shared and device == 0
                else f"snap-{snap:017x}"
            )
            mappings.append(
                {
                    "DeviceName": f"/dev/xvd{'abcd'[device]}",
                    "Ebs": {"SnapshotId": snapshot_id, "VolumeSize": rnd.choice((8, 20, 50, 100, 200))},
                }
            )
        name_style = family % 4
        stamp = created.strftime("%Y-%m-%d-%H%M") if name_style != 2 else f"v1.{index}.{rnd.randrange(10)}"
        prefix = ("web-golden", "api_base", "worker", "ubuntu-22.04-base")[name_style]
        acc.images.append(
            {
                "ImageId": f"ami-{n:017x}",
                "Name": f"{prefix}{family:03d}-{stamp}",
                "State": state,
                "CreationDate": created.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
                "OwnerId": ACCOUNT,
                "Description": f"family {family} build {index}",
                "Public": False,
                "Tags": tags,
                "BlockDeviceMappings": mappings,
                "DeregistrationProtection": "enabled" if rnd.random() < 0.01 else "disabled",
                "Architecture": "x86_64",
                "ImageType": "machine",
                "RootDeviceType": "ebs",
                "VirtualizationType": "hvm",
            }
        )
    ids = [i["ImageId"] for i in acc.images]

    def recent_image() -> str:  # newer AMIs of a family are used more
        family = rnd.randrange(families)
        return ids[family * per_family + per_family - 1 - min(per_family - 1, int(rnd.expovariate(0.3)))]

    states = (
        ["running"] * 80
        + ["stopped"] * 10
        + ["terminated"] * 5
        + ["pending", "shutting-down", "stopping"] * 2
    )
    reservation = 0
    for n in range(instances):
        if n % 3 == 0:
            reservation += 1
        acc.instances.append(
            {
                "ReservationId": f"r-{reservation:017x}",
                "InstanceId": f"i-{n:017x}",
                "ImageId": recent_image(),
                "State": {"Name": rnd.choice(states)},
                "InstanceType": "m7g.large",
            }
        )
    for t in range(templates):
        template_id = f"lt-{t:017x}"
        name = f"tmpl-{t:04d}"
        default = rnd.randint(1, versions)
        acc.templates.append(
            {
                "LaunchTemplateId": template_id,
                "LaunchTemplateName": name,
                "DefaultVersionNumber": default,
                "LatestVersionNumber": versions,
            }
        )
        acc.versions[template_id] = [
            {
                "LaunchTemplateId": template_id,
                "LaunchTemplateName": name,
                "VersionNumber": v,
                "DefaultVersion": v == default,
                "LaunchTemplateData": {}
                if rnd.random() < 0.05
                else {"ImageId": recent_image(), "InstanceType": "m7g.large"},
            }
            for v in range(1, versions + 1)
        ]
    for c in range(configurations):
        acc.configurations.append({"LaunchConfigurationName": f"lc-{c:03d}", "ImageId": recent_image()})
    for g in range(groups):
        group: dict[str, Any] = {
            "AutoScalingGroupName": f"asg-{g:03d}",
            "MinSize": 0,
            "MaxSize": 4,
            "DesiredCapacity": 2,
        }
        template = acc.templates[rnd.randrange(templates)]
        kind = g % 5
        if kind == 0 and acc.configurations:
            group["LaunchConfigurationName"] = acc.configurations[g % len(acc.configurations)][
                "LaunchConfigurationName"
            ]
        elif kind == 1:
            group["MixedInstancesPolicy"] = {
                "LaunchTemplate": {
                    "LaunchTemplateSpecification": {
                        "LaunchTemplateId": template["LaunchTemplateId"],
                        "Version": "$Latest",
                    },
                    "Overrides": [
                        {"InstanceType": "m7g.large"},
                        {
                            "InstanceType": "c7g.large",
                            "LaunchTemplateSpecification": {
                                "LaunchTemplateName": acc.templates[(g + 1) % templates]["LaunchTemplateName"]
                            },
                        },
                        {"InstanceType": "r7g.large", "ImageId": recent_image()},
                    ],
                }
            }
        else:
            version = {2: "$Default", 3: "$Latest", 4: str(rnd.randint(1, versions))}.get(kind, "$Default")
            spec = {"LaunchTemplateId": template["LaunchTemplateId"]}
            if g % 10 != 2:  # no Version: the group uses $Default
                spec["Version"] = version
            group["LaunchTemplate"] = spec
        acc.groups.append(group)
    return acc


class PagedAws:
    """Answers the list calls from `account`, page by page. `calls` counts them by operation."""

    def __init__(self, account: Account) -> None:
        self.account = account
        self.calls: dict[str, int] = {}
        self._answers: dict[str, Callable[[dict[str, Any]], tuple[list[Any], str]]] = {
            "DescribeImages": self._images,
            "DescribeInstances": self._instances,
            "DescribeLaunchTemplates": lambda p: (self.account.templates, "LaunchTemplates"),
            "DescribeLaunchTemplateVersions": self._versions,
            "DescribeAutoScalingGroups": lambda p: (self.account.groups, "AutoScalingGroups"),
            "DescribeLaunchConfigurations": lambda p: (self.account.configurations, "LaunchConfigurations"),
        }

    def attach(self, client: Any) -> Any:
        """Serve this client's calls from the account (see the module docstring)."""
        client.meta.events.register("before-parameter-build", self._remember)
        client.meta.events.register("before-call", self._answer)
        return client

    def session(self) -> boto3.session.Session:
        """A boto3 session whose clients are served from the account (for `AwsClients`)."""
        paged = self

        class Session(boto3.session.Session):
            def client(self, *args: Any, **kwargs: Any) -> Any:
                return paged.attach(super().client(*args, **kwargs))

        return Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1")

    def _remember(self, params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        context["paged_params"] = dict(params)

    def _answer(self, model: Any, context: dict[str, Any], **_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        name = model.name
        if name not in self._answers:
            raise NotImplementedError(f"{name} is not served by bench._paged_aws")
        self.calls[name] = self.calls.get(name, 0) + 1
        params = context.get("paged_params", {})
        items, key = self._answers[name](params)
        limit = PAGE_LIMITS[name]
        asked = params.get("MaxResults") or params.get("MaxRecords") or limit
        size = max(1, min(int(asked), limit))
        start = int(params.get("NextToken") or 0)
        page = items[start : start + size]
        parsed: dict[str, Any] = {key: page}
        if name == "DescribeInstances":
            parsed = {"Reservations": _reservations(page)}
        if start + size < len(items):
            parsed["NextToken"] = str(start + size)
        parsed["ResponseMetadata"] = {"HTTPStatusCode": 200, "RequestId": "paged"}
        return AWSResponse("https://paged.invalid/", 200, {}, None), parsed

    def _images(self, params: dict[str, Any]) -> tuple[list[Any], str]:
        images = self.account.images
        for f in params.get("Filters", []):
            if f["Name"] == "image-id":
                wanted = set(f["Values"])
                images = [i for i in images if i["ImageId"] in wanted]
        return images, "Images"

    def _instances(self, params: dict[str, Any]) -> tuple[list[Any], str]:
        instances = self.account.instances
        for f in params.get("Filters", []):
            if f["Name"] == "instance-state-name":
                wanted = set(f["Values"])
                instances = [i for i in instances if i["State"]["Name"] in wanted]
        return instances, "Reservations"

    def _versions(self, params: dict[str, Any]) -> tuple[list[Any], str]:
        acc = self.account
        wanted = params.get("Versions") or []
        template_id = params.get("LaunchTemplateId")
        if template_id:
            versions = acc.versions[template_id]
            if wanted:
                versions = [v for v in versions if str(v["VersionNumber"]) in wanted]
            return versions, "LaunchTemplateVersions"
        if not {"$Default", "$Latest"} & set(wanted):
            raise ValueError("across all templates only $Default and $Latest may be asked for")
        found = []
        for template in acc.templates:
            numbers = set()
            if "$Default" in wanted:
                numbers.add(template["DefaultVersionNumber"])
            if "$Latest" in wanted:
                numbers.add(template["LatestVersionNumber"])
            found += [v for v in acc.versions[template["LaunchTemplateId"]] if v["VersionNumber"] in numbers]
        return found, "LaunchTemplateVersions"


def _reservations(instances: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A page of instances back in their reservations (a reservation may span two pages, as in AWS)."""
    grouped: dict[str, list[dict[str, Any]]] = {}
    for instance in instances:
        grouped.setdefault(instance["ReservationId"], []).append(
            {k: v for k, v in instance.items() if k != "ReservationId"}
        )
    return [{"ReservationId": rid, "OwnerId": ACCOUNT, "Instances": items} for rid, items in grouped.items()]
