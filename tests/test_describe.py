"""`/ami describe` through the real handlers and worker: against moto (snapshots, tags, every kind of
use) and, for what moto lacks (deprecation, deregistration protection), botocore's Stubber."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from bot.app import build
from tests.interactions import StubbedAws, ack_text, answer_to, command
from tests.test_inventory import (
    expect_configurations,
    expect_groups,
    expect_instances,
    expect_templates,
    paged,
)

IMAGE = "ami-0123456789abcdef0"


def test_describe_shows_snapshots_tags_and_every_use(bot: Any, slack: Any, moto: Any, instance: str) -> None:
    runtime = bot()
    ec2 = moto.client("ec2")
    spec = [
        {
            "ResourceType": "image",
            "Tags": [{"Key": "team", "Value": "web"}, {"Key": "amibot:keep", "Value": "UADMIN"}],
        }
    ]
    image_id = ec2.create_image(
        InstanceId=instance, Name="web-golden-1", Description="nightly", TagSpecifications=spec
    )["ImageId"]
    raw = ec2.describe_images(ImageIds=[image_id])["Images"][0]
    snapshot = raw["BlockDeviceMappings"][0]["Ebs"]
    user = ec2.run_instances(ImageId=image_id, MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    template = ec2.create_launch_template(
        LaunchTemplateName="web", LaunchTemplateData={"ImageId": image_id, "InstanceType": "t3.micro"}
    )["LaunchTemplate"]["LaunchTemplateId"]
    autoscaling = moto.client("autoscaling")
    autoscaling.create_launch_configuration(
        LaunchConfigurationName="web-lc", ImageId=image_id, InstanceType="t3.micro"
    )
    autoscaling.create_auto_scaling_group(
        AutoScalingGroupName="web-asg",
        LaunchTemplate={"LaunchTemplateId": template, "Version": "$Default"},
        MinSize=0,
        MaxSize=1,
        DesiredCapacity=0,
        AvailabilityZones=["us-east-1a"],
    )

    response, url = command(runtime, slack, f"describe {image_id}")
    assert f"Looking up `{image_id}` in us-east-1" in ack_text(response)
    text = answer_to(slack, url, "Used by")
    assert f"*`{image_id}`* web-golden-1 — available in us-east-1" in text
    assert f"`{snapshot['SnapshotId']}` {snapshot['VolumeSize']} GiB" in text
    assert f"Size: {snapshot['VolumeSize']} GiB in 1 snapshot(s)" in text
    assert "`team` = web" in text and "Description: nightly" in text
    assert "Protect tag: `amibot:keep` set by <@UADMIN>" in text
    assert "Deprecation: not set" in text and "Deregistration protection: disabled" in text
    assert f"instance {user} (running)" in text
    assert f"launch template {template} v1 ($Default, $Latest)" in text
    assert "launch configuration web-lc" in text
    assert "auto scaling group web-asg" in text
    blocks = slack.responses(url)[-1].params["blocks"]
    assert any("Where it is used" in b.get("text", {}).get("text", "") for b in blocks)


def test_describe_an_unknown_image_says_so(bot: Any, slack: Any, moto: Any) -> None:
    runtime = bot()
    _, url = command(runtime, slack, f"describe {IMAGE} --region eu-west-1")
    assert answer_to(slack, url, "not found") == f"⚠️ image {IMAGE} not found in eu-west-1"


def test_describe_an_unused_image(bot: Any, slack: Any, moto: Any, instance: str) -> None:
    runtime = bot()
    image_id = moto.client("ec2").create_image(InstanceId=instance, Name="lonely")["ImageId"]
    _, url = command(runtime, slack, f"describe {image_id}")
    assert "Not in use: no instance, launch template version" in answer_to(slack, url, "Used by")


@pytest.fixture
def stubbed(settings_for: Callable[..., Any]) -> Iterator[tuple[Any, Stubber, Stubber]]:
    def client(service: str) -> Any:
        return boto3.client(
            service, region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing"
        )

    ec2, autoscaling = client("ec2"), client("autoscaling")
    with Stubber(ec2) as ec2_stub, Stubber(autoscaling) as asg_stub:
        runtime = build(settings_for(), aws_clients=StubbedAws(ec2, autoscaling))
        runtime.start_background()
        try:
            yield runtime, ec2_stub, asg_stub
        finally:
            runtime.stop()


def test_describe_shows_deprecation_and_deregistration_protection(stubbed: Any, slack: Any) -> None:
    runtime, ec2_stub, asg_stub = stubbed
    now = datetime.now(UTC)
    deprecated = (now - timedelta(days=3)).replace(microsecond=0)
    paged(
        ec2_stub,
        "describe_images",
        "Images",
        [
            [
                {
                    "ImageId": IMAGE,
                    "Name": "web-golden-7",
                    "State": "available",
                    "OwnerId": "123456789012",
                    "CreationDate": (now - timedelta(days=90)).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
                    "DeprecationTime": deprecated.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
                    "DeregistrationProtection": "enabled-with-cooldown",
                    "LastLaunchedTime": "2026-01-02T03:04:05Z",
                    "BlockDeviceMappings": [
                        {"DeviceName": "/dev/xvda", "Ebs": {"SnapshotId": "snap-0a", "VolumeSize": 30}},
                        {"DeviceName": "/dev/xvdb", "Ebs": {"SnapshotId": "snap-0b", "VolumeSize": 100}},
                    ],
                }
            ]
        ],
        Filters=[{"Name": "image-id", "Values": [IMAGE]}],
        IncludeDeprecated=True,
        IncludeDisabled=True,
        MaxResults=1000,
    )
    expect_instances(ec2_stub, [[]])
    expect_templates(ec2_stub, [[]])
    expect_configurations(asg_stub, [[]])
    expect_groups(asg_stub, [[]])

    _, url = command(runtime, slack, f"describe {IMAGE}")
    text = answer_to(slack, url, "Used by")
    ec2_stub.assert_no_pending_responses()
    asg_stub.assert_no_pending_responses()
    assert f"Deprecation: deprecated since {deprecated.strftime('%Y-%m-%d %H:%M')} UTC" in text
    assert "Deregistration protection: enabled" in text
    assert "Created: " in text and "(90d ago)" in text
    assert "Size: 130 GiB in 2 snapshot(s)" in text
    assert "`/dev/xvdb` `snap-0b` 100 GiB" in text
    assert "Last launched: 2026-01-02 03:04 UTC" in text
    assert "Not in use" in text


def test_describe_when_auto_scaling_may_not_be_read_still_shows_the_image(stubbed: Any, slack: Any) -> None:
    runtime, ec2_stub, asg_stub = stubbed
    ec2_stub.add_response(
        "describe_images",
        {
            "Images": [
                {
                    "ImageId": IMAGE,
                    "Name": "x-image",
                    "State": "available",
                    "CreationDate": "2026-01-01T00:00:00.000Z",
                }
            ]
        },
    )
    expect_instances(ec2_stub, [[]])
    expect_templates(ec2_stub, [[]])
    asg_stub.add_client_error("describe_launch_configurations", "AccessDenied", "not allowed")
    _, url = command(runtime, slack, f"describe {IMAGE}")
    text = answer_to(slack, url, "Used by")
    assert "x-image" in text
    assert (
        "could not check where it is used: amibot's AWS role is not allowed to list launch configurations"
        in text
    )
