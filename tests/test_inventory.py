"""bot.aws.inventory: the account's images and where they are used.

Paging, ResolveAlias and the fields moto does not implement are tested with botocore's Stubber
(moto ignores page sizes and returns one page); a realistic account is built in moto.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from bot.aws.inventory import Usage, find_uses, images_by_id, own_images
from bot.errors import AwsError
from bot.images import Image, Snapshot, Use, UseKind

REGION = "us-east-1"
LIVE = ["pending", "running", "shutting-down", "stopping", "stopped"]

INSTANCE = UseKind.INSTANCE
TEMPLATE = UseKind.LAUNCH_TEMPLATE
CONFIG = UseKind.LAUNCH_CONFIGURATION
GROUP = UseKind.AUTO_SCALING_GROUP


# ---------------------------------------------------------------------------------------------------
# Stubbed clients: exact requests, several pages each


@pytest.fixture
def ec2() -> Iterator[tuple[Any, Stubber]]:
    client = boto3.client(
        "ec2", region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing"
    )
    with Stubber(client) as stub:
        yield client, stub
        stub.assert_no_pending_responses()


@pytest.fixture
def autoscaling() -> Iterator[tuple[Any, Stubber]]:
    client = boto3.client(
        "autoscaling", region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing"
    )
    with Stubber(client) as stub:
        yield client, stub
        stub.assert_no_pending_responses()


def paged(stub: Stubber, operation: str, key: str, pages: list[list[Any]], **params: Any) -> None:
    """Queue `pages` as consecutive responses chained by NextToken, checking each request."""
    for number, items in enumerate(pages):
        response: dict[str, Any] = {key: items}
        if number < len(pages) - 1:
            response["NextToken"] = f"{operation}-{number + 1}"
        expected = dict(params)
        if number:
            expected["NextToken"] = f"{operation}-{number}"
        stub.add_response(operation, response, expected)


def instance(instance_id: str, image_id: str, state: str) -> dict[str, Any]:
    return {"InstanceId": instance_id, "ImageId": image_id, "State": {"Name": state}}


def reservation(*instances: dict[str, Any]) -> dict[str, Any]:
    return {"ReservationId": "r-1", "Instances": list(instances)}


def template(template_id: str, name: str, default: int, latest: int) -> dict[str, Any]:
    return {
        "LaunchTemplateId": template_id,
        "LaunchTemplateName": name,
        "DefaultVersionNumber": default,
        "LatestVersionNumber": latest,
    }


def version(template_id: str, number: int, image_id: str | None) -> dict[str, Any]:
    data = {"ImageId": image_id} if image_id else {}
    return {"LaunchTemplateId": template_id, "VersionNumber": number, "LaunchTemplateData": data}


def configuration(name: str, image_id: str) -> dict[str, Any]:
    return {
        "LaunchConfigurationName": name,
        "ImageId": image_id,
        "InstanceType": "t3.micro",
        "CreatedTime": datetime(2026, 1, 1, tzinfo=UTC),
    }


def group(name: str, **launch: Any) -> dict[str, Any]:
    return {
        "AutoScalingGroupName": name,
        "MinSize": 0,
        "MaxSize": 1,
        "DesiredCapacity": 0,
        "DefaultCooldown": 300,
        "AvailabilityZones": ["us-east-1a"],
        "HealthCheckType": "EC2",
        "CreatedTime": datetime(2026, 1, 1, tzinfo=UTC),
        **launch,
    }


def expect_instances(stub: Stubber, pages: list[list[Any]]) -> None:
    paged(
        stub,
        "describe_instances",
        "Reservations",
        pages,
        Filters=[{"Name": "instance-state-name", "Values": LIVE}],
        IncludeManagedResources=True,
        MaxResults=1000,
    )


def expect_templates(stub: Stubber, pages: list[list[Any]]) -> None:
    paged(
        stub,
        "describe_launch_templates",
        "LaunchTemplates",
        pages,
        IncludeManagedResources=True,
        MaxResults=200,
    )


def expect_versions(stub: Stubber, pages: list[list[Any]], template_id: str | None = None) -> None:
    scope: dict[str, Any] = (
        {"LaunchTemplateId": template_id} if template_id else {"Versions": ["$Default", "$Latest"]}
    )
    paged(
        stub,
        "describe_launch_template_versions",
        "LaunchTemplateVersions",
        pages,
        ResolveAlias=True,
        IncludeManagedResources=True,
        MaxResults=200,
        **scope,
    )


def expect_configurations(stub: Stubber, pages: list[list[Any]]) -> None:
    paged(stub, "describe_launch_configurations", "LaunchConfigurations", pages, MaxRecords=100)


def expect_groups(stub: Stubber, pages: list[list[Any]]) -> None:
    paged(
        stub,
        "describe_auto_scaling_groups",
        "AutoScalingGroups",
        pages,
        IncludeInstances=False,
        MaxRecords=100,
    )


def test_find_uses_reads_every_page_of_every_list(ec2, autoscaling) -> None:
    (ec2_client, ec2_stub), (asg_client, asg_stub) = ec2, autoscaling
    expect_instances(
        ec2_stub,
        [
            [reservation(instance("i-01", "ami-running", "running"))],
            [],  # AWS may send an empty page with a NextToken
            [reservation(instance("i-02", "ami-last-instance", "stopped"))],
        ],
    )
    expect_templates(
        ec2_stub,
        [[template("lt-01", "base", 1, 1)], [template("lt-02", "web", 3, 3)]],
    )
    # $Default/$Latest of all templates; lt-02 has older versions, so it is listed in full
    expect_versions(ec2_stub, [[version("lt-01", 1, "ami-base")], [version("lt-02", 3, "ami-web-3")]])
    expect_versions(
        ec2_stub,
        [[version("lt-02", 3, "ami-web-3"), version("lt-02", 2, None)], [version("lt-02", 1, "ami-web-1")]],
        template_id="lt-02",
    )
    expect_configurations(
        asg_stub, [[configuration("lc-a", "ami-lc-a")], [configuration("lc-b", "ami-last-config")]]
    )
    expect_groups(
        asg_stub,
        [
            [group("asg-a", LaunchConfigurationName="lc-a")],
            [
                group(
                    "asg-b",
                    MixedInstancesPolicy={
                        "LaunchTemplate": {
                            "LaunchTemplateSpecification": {"LaunchTemplateName": "web", "Version": "1"},
                            "Overrides": [{"InstanceType": "t3.large", "ImageId": "ami-only-group"}],
                        }
                    },
                )
            ],
        ],
    )

    usage = find_uses(ec2_client, asg_client, REGION)

    assert usage == Usage(
        uses={
            "ami-base": (Use(TEMPLATE, "lt-01 v1", "$Default, $Latest"),),
            "ami-last-config": (Use(CONFIG, "lc-b"),),
            "ami-last-instance": (Use(INSTANCE, "i-02", "stopped"),),
            "ami-lc-a": (Use(CONFIG, "lc-a"), Use(GROUP, "asg-a", "via launch configuration lc-a")),
            "ami-only-group": (Use(GROUP, "asg-b", "via override image"),),
            "ami-running": (Use(INSTANCE, "i-01", "running"),),
            "ami-web-1": (Use(TEMPLATE, "lt-02 v1", ""), Use(GROUP, "asg-b", "via lt-02 v1")),
            "ami-web-3": (Use(TEMPLATE, "lt-02 v3", "$Default, $Latest"),),
        },
        unresolved=(),
        calls=3 + 2 + 2 + 2 + 2 + 2,
    )


def test_find_uses_needs_no_call_per_template_when_default_and_latest_are_all(ec2, autoscaling) -> None:
    (ec2_client, ec2_stub), (asg_client, asg_stub) = ec2, autoscaling
    templates = [template(f"lt-{n:02}", f"tpl-{n}", 1, 1) for n in range(5)]
    templates.append(template("lt-10", "two", 1, 2))  # v1 is $Default, v2 is $Latest: both in the sweep
    heads = [version(f"lt-{n:02}", 1, f"ami-{n:02}") for n in range(5)]
    heads += [version("lt-10", 1, "ami-10-1"), version("lt-10", 2, "ami-10-2")]
    expect_instances(ec2_stub, [[]])
    expect_templates(ec2_stub, [templates[:3], templates[3:]])
    expect_versions(ec2_stub, [heads + heads[:1]])  # AWS lists a version twice when it is both
    expect_configurations(asg_stub, [[]])
    expect_groups(asg_stub, [[]])

    usage = find_uses(ec2_client, asg_client, REGION)

    assert usage.calls == 1 + 2 + 1 + 1 + 1
    assert usage.uses["ami-10-1"] == (Use(TEMPLATE, "lt-10 v1", "$Default"),)
    assert usage.uses["ami-10-2"] == (Use(TEMPLATE, "lt-10 v2", "$Latest"),)
    assert len(usage.uses) == 7


def test_find_uses_reports_what_it_cannot_resolve(ec2, autoscaling) -> None:
    (ec2_client, ec2_stub), (asg_client, asg_stub) = ec2, autoscaling
    expect_instances(ec2_stub, [[]])
    expect_templates(ec2_stub, [[template("lt-01", "golden", 2, 2)]])
    # v2 came back resolved (ResolveAlias=True); v1's parameter could not be resolved
    expect_versions(ec2_stub, [[version("lt-01", 2, "ami-resolved")]])
    expect_versions(
        ec2_stub,
        [[version("lt-01", 2, "ami-resolved"), version("lt-01", 1, "resolve:ssm:/golden/web")]],
        template_id="lt-01",
    )
    expect_configurations(asg_stub, [[]])
    expect_groups(
        asg_stub,
        [
            [
                group("by-ssm", LaunchTemplate={"LaunchTemplateId": "lt-01", "Version": "1"}),
                group("default", LaunchTemplate={"LaunchTemplateName": "golden"}),  # no Version: $Default
                group("gone-lc", LaunchConfigurationName="deleted-lc"),
                group("gone-lt", LaunchTemplate={"LaunchTemplateId": "lt-99", "Version": "$Latest"}),
                group("gone-version", LaunchTemplate={"LaunchTemplateId": "lt-01", "Version": "7"}),
            ]
        ],
    )

    usage = find_uses(ec2_client, asg_client, REGION)

    assert usage.uses == {
        "ami-resolved": (
            Use(TEMPLATE, "lt-01 v2", "$Default, $Latest"),
            Use(GROUP, "default", "via lt-01 v2"),
        )
    }
    assert usage.unresolved == (
        "auto scaling group by-ssm (via lt-01 v1): image resolve:ssm:/golden/web could not be resolved",
        "auto scaling group gone-lc: launch configuration deleted-lc not found",
        "auto scaling group gone-lt: launch template lt-99 not found",
        "auto scaling group gone-version: launch template lt-01 version 7 not found",
        "launch template lt-01 v1: image resolve:ssm:/golden/web could not be resolved",
    )


def test_find_uses_keeps_only_the_asked_images_but_still_lists_by_pages(ec2, autoscaling) -> None:
    (ec2_client, ec2_stub), (asg_client, asg_stub) = ec2, autoscaling
    expect_instances(
        ec2_stub,
        [[reservation(instance("i-01", "ami-a", "running"), instance("i-02", "ami-b", "pending"))]],
    )
    expect_templates(ec2_stub, [[]])
    expect_configurations(asg_stub, [[]])
    expect_groups(asg_stub, [[]])

    usage = find_uses(ec2_client, asg_client, REGION, image_ids=["ami-b", "ami-unused"])

    assert usage.uses == {"ami-b": (Use(INSTANCE, "i-02", "pending"),)}
    assert usage.calls == 4  # no launch template versions to read when there are no templates


def test_uses_are_ordered_by_kind_then_naturally_by_name(ec2, autoscaling) -> None:
    (ec2_client, ec2_stub), (asg_client, asg_stub) = ec2, autoscaling
    expect_instances(ec2_stub, [[reservation(instance("i-09", "ami-a", "running"))]])
    expect_templates(ec2_stub, [[template("lt-01", "app", 10, 10)]])
    expect_versions(ec2_stub, [[version("lt-01", 10, "ami-a")]])
    expect_versions(
        ec2_stub,
        [[version("lt-01", n, "ami-a") for n in range(10, 0, -1)]],
        template_id="lt-01",
    )
    expect_configurations(asg_stub, [[configuration("lc-2", "ami-a"), configuration("lc-10", "ami-a")]])
    expect_groups(asg_stub, [[group("asg", LaunchTemplate={"LaunchTemplateId": "lt-01", "Version": "9"})]])

    uses = find_uses(ec2_client, asg_client, REGION).uses["ami-a"]

    assert [use.describe() for use in uses] == [
        "instance i-09 (running)",
        *(f"launch template lt-01 v{n}" for n in range(1, 10)),
        "launch template lt-01 v10 ($Default, $Latest)",
        "launch configuration lc-2",
        "launch configuration lc-10",
        "auto scaling group asg (via lt-01 v9)",
    ]


@pytest.mark.parametrize("failing", ["describe_launch_configurations", "describe_auto_scaling_groups"])
def test_access_denied_on_autoscaling_raises_instead_of_reading_as_unused(
    ec2, autoscaling, failing: str
) -> None:
    (ec2_client, ec2_stub), (asg_client, asg_stub) = ec2, autoscaling
    expect_instances(ec2_stub, [[reservation(instance("i-01", "ami-a", "running"))]])
    expect_templates(ec2_stub, [[]])
    if failing == "describe_auto_scaling_groups":
        expect_configurations(asg_stub, [[]])
    asg_stub.add_client_error(failing, "AccessDenied", "User is not authorized", http_status_code=403)

    with pytest.raises(AwsError) as raised:
        find_uses(ec2_client, asg_client, REGION)

    assert raised.value.code == "AccessDenied"
    assert "not allowed to list" in raised.value.message
    assert "us-east-1" in raised.value.message
    assert "\n" not in raised.value.message


def test_a_refused_second_page_raises(ec2, autoscaling) -> None:
    (ec2_client, ec2_stub), (asg_client, _) = ec2, autoscaling
    ec2_stub.add_response(
        "describe_instances",
        {"Reservations": [reservation(instance("i-01", "ami-a", "running"))], "NextToken": "t1"},
    )
    ec2_stub.add_client_error("describe_instances", "UnauthorizedOperation", "nope", http_status_code=403)

    with pytest.raises(AwsError, match="not allowed to list instances in us-east-1"):
        find_uses(ec2_client, asg_client, REGION)


def raw_image(image_id: str, **extra: Any) -> dict[str, Any]:
    return {
        "ImageId": image_id,
        "Name": f"name-{image_id}",
        "State": "available",
        "CreationDate": "2026-10-01T08:30:00.000Z",
        "OwnerId": "123456789012",
        "Public": False,
        **extra,
    }


def test_own_images_reads_every_page_and_maps_every_field(ec2) -> None:
    client, stub = ec2
    last = raw_image(
        "ami-last",
        Description="golden web",
        Public=True,
        Tags=[{"Key": "amibot:family", "Value": "web"}, {"Key": "team", "Value": "platform"}],
        BlockDeviceMappings=[
            {"DeviceName": "/dev/xvda", "Ebs": {"SnapshotId": "snap-root", "VolumeSize": 8}},
            {"DeviceName": "/dev/xvdb", "Ebs": {"SnapshotId": "snap-data", "VolumeSize": 100}},
            {"DeviceName": "/dev/xvdc", "Ebs": {"VolumeSize": 20}},  # blank volume: no snapshot
            {"DeviceName": "/dev/sdd", "VirtualName": "ephemeral0"},
        ],
        DeregistrationProtection="enabled-with-cooldown",
        DeprecationTime="2027-01-01T00:00:00.000Z",
        LastLaunchedTime="2026-11-20T10:00:00Z",
    )
    paged(
        stub,
        "describe_images",
        "Images",
        [
            [raw_image("ami-1", DeregistrationProtection="disabled")],
            [raw_image("ami-2", State="disabled", DeregistrationProtection="enabled")],
            [last],
        ],
        Owners=["self"],
        IncludeDisabled=True,
        MaxResults=1000,
    )

    images = own_images(client, REGION)

    assert [(i.image_id, i.state, i.deregistration_protection) for i in images] == [
        ("ami-1", "available", False),
        ("ami-2", "disabled", True),
        ("ami-last", "available", True),
    ]
    assert images[2] == Image(
        image_id="ami-last",
        name="name-ami-last",
        state="available",
        creation_date=datetime(2026, 10, 1, 8, 30, tzinfo=UTC),
        region=REGION,
        owner_id="123456789012",
        description="golden web",
        tags={"amibot:family": "web", "team": "platform"},
        snapshots=(Snapshot("snap-root", 8, "/dev/xvda"), Snapshot("snap-data", 100, "/dev/xvdb")),
        deregistration_protection=True,
        deprecation_time=datetime(2027, 1, 1, tzinfo=UTC),
        last_launched=datetime(2026, 11, 20, 10, tzinfo=UTC),
        public=True,
    )
    assert images[2].size_gib == 108
    assert images[0].creation_date.tzinfo is not None
    assert images[0].deprecation_time is None and images[0].last_launched is None


def test_images_by_id_filters_200_ids_per_call_and_pages_within(ec2) -> None:
    client, stub = ec2
    ids = [f"ami-{n:017x}" for n in range(450)]

    def expect(chunk: list[str], pages: list[list[Any]]) -> None:
        paged(
            stub,
            "describe_images",
            "Images",
            pages,
            Filters=[{"Name": "image-id", "Values": chunk}],
            IncludeDeprecated=True,
            IncludeDisabled=True,
            MaxResults=1000,
        )

    expect(ids[:200], [[raw_image(ids[0])]])
    expect(ids[200:400], [[raw_image(ids[200])], [raw_image(ids[399])]])  # a chunk over two pages
    expect(ids[400:], [[raw_image(ids[449], State="pending")]])

    found = images_by_id(client, REGION, [*ids, ids[0]])  # a repeated id is asked once

    assert sorted(found) == sorted([ids[0], ids[200], ids[399], ids[449]])
    assert found[ids[449]].state == "pending"
    assert found[ids[0]].region == REGION


def test_images_by_id_of_nothing_makes_no_call(ec2) -> None:
    client, _ = ec2
    assert images_by_id(client, REGION, []) == {}


# ---------------------------------------------------------------------------------------------------
# moto: a realistic account


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, Any]]:
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    from moto import mock_aws

    with mock_aws():
        yield boto3.client("ec2", region_name=REGION), boto3.client("autoscaling", region_name=REGION)


def launch(ec2: Any, image_id: str) -> str:
    return ec2.run_instances(ImageId=image_id, MinCount=1, MaxCount=1, InstanceType="t3.micro")["Instances"][
        0
    ]["InstanceId"]


def test_find_uses_in_a_realistic_account(aws) -> None:
    ec2, autoscaling = aws
    builder = launch(ec2, "ami-0123456789abcdef0")
    names = ["stopped", "old-lt", "current", "config", "asg", "mixed", "unused", "terminated"]
    ami = {name: ec2.create_image(InstanceId=builder, Name=f"{name}-1")["ImageId"] for name in names}
    ec2.terminate_instances(InstanceIds=[builder])

    stopped = launch(ec2, ami["stopped"])
    ec2.stop_instances(InstanceIds=[stopped])
    ec2.terminate_instances(InstanceIds=[launch(ec2, ami["terminated"])])

    app = ec2.create_launch_template(LaunchTemplateName="app", LaunchTemplateData={"ImageId": ami["old-lt"]})
    app_id = app["LaunchTemplate"]["LaunchTemplateId"]
    ec2.create_launch_template_version(
        LaunchTemplateId=app_id, LaunchTemplateData={"ImageId": ami["current"]}
    )
    ec2.modify_launch_template(LaunchTemplateId=app_id, DefaultVersion="2")
    web = ec2.create_launch_template(LaunchTemplateName="web", LaunchTemplateData={"ImageId": ami["current"]})
    web_id = web["LaunchTemplate"]["LaunchTemplateId"]
    ec2.create_launch_template_version(LaunchTemplateName="web", LaunchTemplateData={"ImageId": ami["asg"]})
    batch = ec2.create_launch_template(
        LaunchTemplateName="batch", LaunchTemplateData={"ImageId": ami["mixed"]}
    )
    batch_id = batch["LaunchTemplate"]["LaunchTemplateId"]

    autoscaling.create_launch_configuration(
        LaunchConfigurationName="legacy", ImageId=ami["config"], InstanceType="t3.micro"
    )
    sizes = {"MinSize": 0, "MaxSize": 2, "DesiredCapacity": 0, "AvailabilityZones": ["us-east-1a"]}
    autoscaling.create_auto_scaling_group(
        AutoScalingGroupName="web-asg",
        LaunchTemplate={"LaunchTemplateName": "web", "Version": "$Latest"},
        **sizes,
    )
    autoscaling.create_auto_scaling_group(
        AutoScalingGroupName="batch-asg",
        MixedInstancesPolicy={
            "LaunchTemplate": {
                "LaunchTemplateSpecification": {"LaunchTemplateId": app_id},
                "Overrides": [
                    {
                        "InstanceType": "t3.micro",
                        "LaunchTemplateSpecification": {"LaunchTemplateName": "batch"},
                    }
                ],
            }
        },
        **sizes,
    )

    usage = find_uses(ec2, autoscaling, REGION)

    # (template ids are random, so the order among templates is checked in the Stubber tests)
    assert {image_id: set(uses) for image_id, uses in usage.uses.items()} == {
        ami["stopped"]: {Use(INSTANCE, stopped, "stopped")},
        ami["old-lt"]: {Use(TEMPLATE, f"{app_id} v1", "")},
        ami["current"]: {
            Use(TEMPLATE, f"{app_id} v2", "$Default, $Latest"),
            Use(TEMPLATE, f"{web_id} v1", "$Default"),
            Use(GROUP, "batch-asg", f"via {app_id} v2"),
        },
        ami["config"]: {Use(CONFIG, "legacy")},
        ami["asg"]: {Use(TEMPLATE, f"{web_id} v2", "$Latest"), Use(GROUP, "web-asg", f"via {web_id} v2")},
        ami["mixed"]: {
            Use(TEMPLATE, f"{batch_id} v1", "$Default, $Latest"),
            Use(GROUP, "batch-asg", f"via {batch_id} v1"),
        },
    }
    assert list(usage.uses) == sorted(usage.uses)
    assert [use.kind for use in usage.uses[ami["current"]]] == [TEMPLATE, TEMPLATE, GROUP]
    assert usage.unresolved == ()
    # instances, templates, $Default/$Latest sweep, all versions of "app" only, configurations, groups
    assert usage.calls == 6

    only = find_uses(ec2, autoscaling, REGION, image_ids=[ami["unused"], ami["terminated"], ami["asg"]])
    assert list(only.uses) == [ami["asg"]]

    images = own_images(ec2, REGION)
    assert sorted(image.image_id for image in images) == sorted(ami.values())
    current = next(image for image in images if image.image_id == ami["current"])
    assert current.name == "current-1"
    assert current.state == "available"
    assert current.creation_date.tzinfo is not None
    assert current.snapshots and all(s.snapshot_id.startswith("snap-") for s in current.snapshots)
    assert current.deregistration_protection is False  # moto does not implement it

    by_id = images_by_id(ec2, REGION, [ami["unused"], "ami-00000000000000000"])
    assert list(by_id) == [ami["unused"]]
