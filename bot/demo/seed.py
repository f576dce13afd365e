"""What the demo's AWS account holds at the start: named instances and older AMIs.

All seeding is here, through the EC2 API (moto) except what the API cannot set (an image's
creation date). Ages are relative to now, so a demo run always has images young enough to
keep and old enough to prune. The instances run from some of the images, so those are in use.

Families (the name without its date suffix): `web-golden` (us-east-1, copies in eu-west-1),
`api-base` and `batch-worker` (us-east-1). One `api-base` image carries the protect tag.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3

from bot.demo.aws import EmulatedAws


@dataclass(frozen=True)
class SeedImage:
    key: str  # how scripts refer to it: `${web-golden-16d}`, `${web-golden-16d@eu-west-1}`
    family: str
    region: str
    age_days: float
    description: str
    tags: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class SeedInstance:
    name: str
    region: str
    image: str  # SeedImage.key it was launched from
    instance_type: str = "t3.medium"
    tags: tuple[tuple[str, str], ...] = ()


HOME_REGION = "us-east-1"


def image_key(family: str, region: str, age_days: float) -> str:
    """`web-golden-16d` (16 days old, in us-east-1), `web-golden-16d@eu-west-1` elsewhere."""
    key = f"{family}-{age_days:g}d"
    return key if region == HOME_REGION else f"{key}@{region}"


def _family(family: str, region: str, ages: Sequence[float], description: str) -> list[SeedImage]:
    return [SeedImage(image_key(family, region, age), family, region, age, description) for age in ages]


PROTECT = (("amibot:keep", "true"), ("reason", "release 1.0, kept for audits"))

IMAGES: tuple[SeedImage, ...] = (
    *_family("web-golden", "us-east-1", (2, 16, 37, 64, 95, 131), "Golden image for the web tier (Packer)"),
    *_family("web-golden", "eu-west-1", (16, 64), "Golden image for the web tier (Packer), copied"),
    *_family("api-base", "us-east-1", (9, 45, 88), "Base image for the API service"),
    SeedImage("api-base-150d", "api-base", "us-east-1", 150, "API 1.0 release", PROTECT),
    *_family("batch-worker", "us-east-1", (30, 120), "Batch worker with the job runner"),
)

INSTANCES: tuple[SeedInstance, ...] = (
    SeedInstance("web-1", "us-east-1", "web-golden-16d", tags=(("team", "web"),)),
    SeedInstance("api-1", "us-east-1", "api-base-45d", tags=(("team", "api"),)),
    SeedInstance("batch-1", "us-east-1", "batch-worker-30d", "c6i.large", (("team", "data"),)),
    SeedInstance("web-eu-1", "eu-west-1", "web-golden-16d@eu-west-1", tags=(("team", "web"),)),
)


@dataclass(frozen=True)
class Instance:
    name: str
    id: str
    region: str
    image_id: str
    instance_type: str


@dataclass
class Seeded:
    instances: dict[str, Instance] = field(default_factory=dict)  # by name
    images: dict[str, str] = field(default_factory=dict)  # SeedImage.key -> AMI id
    image_names: dict[str, str] = field(default_factory=dict)  # AMI id -> name


def image_name(family: str, created: datetime) -> str:
    """Names like Packer makes them: `web-golden-2026-01-05-0930`."""
    return f"{family}-{created:%Y-%m-%d-%H%M}"


def seed(aws: EmulatedAws, now: datetime | None = None) -> Seeded:
    """Create the images and instances in moto; returns their ids."""
    now = now or datetime.now(UTC)
    seeded = Seeded()
    clients: dict[str, Any] = {}

    def ec2(region: str) -> Any:
        if region not in clients:
            clients[region] = boto3.client("ec2", region_name=region)
        return clients[region]

    for image in IMAGES:
        created = (now - timedelta(days=image.age_days)).replace(hour=9, minute=30, second=0, microsecond=0)
        name = image_name(image.family, created)
        image_id = ec2(image.region).register_image(
            Name=name,
            Description=image.description,
            Architecture="x86_64",
            RootDeviceName="/dev/xvda",
            VirtualizationType="hvm",
        )["ImageId"]
        tags = [{"Key": "Name", "Value": name}, *({"Key": k, "Value": v} for k, v in image.tags)]
        ec2(image.region).create_tags(Resources=[image_id], Tags=tags)
        aws.backend(image.region).amis[image_id].creation_date = created
        seeded.images[image.key] = image_id
        seeded.image_names[image_id] = name

    for instance in INSTANCES:
        image_id = seeded.images[instance.image]
        tags = [{"Key": "Name", "Value": instance.name}, *({"Key": k, "Value": v} for k, v in instance.tags)]
        reservation = ec2(instance.region).run_instances(
            ImageId=image_id,
            MinCount=1,
            MaxCount=1,
            InstanceType=instance.instance_type,
            TagSpecifications=[{"ResourceType": "instance", "Tags": tags}],
        )
        instance_id = reservation["Instances"][0]["InstanceId"]
        seeded.instances[instance.name] = Instance(
            instance.name, instance_id, instance.region, image_id, instance.instance_type
        )
    return seeded
