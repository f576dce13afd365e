"""`/ami list` through the real handlers and worker: every page (botocore Stubber, since moto returns
one page), and the filters against moto."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from bot.app import build
from bot.listing import SHOW_AT_MOST, age, ec2_name_filter, render_list
from tests.interactions import StubbedAws, ack_text, answer_to, command
from tests.test_inventory import expect_instances, instance, paged, reservation

AMI = re.compile(r"ami-[0-9a-f]{8,17}")


@pytest.fixture
def stubbed_bot(settings_for: Callable[..., Any]) -> Iterator[Callable[..., tuple[Any, Stubber]]]:
    """A started bot whose EC2 client is wrapped in a Stubber (checked for leftovers at the end)."""
    made: list[tuple[Any, Stubber]] = []

    def make(**overrides: Any) -> tuple[Any, Stubber]:
        client = boto3.client(
            "ec2", region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing"
        )
        stub = Stubber(client)
        stub.activate()
        runtime = build(settings_for(**overrides), aws_clients=StubbedAws(client))
        runtime.start_background()
        made.append((runtime, stub))
        return runtime, stub

    yield make
    for runtime, stub in made:
        runtime.stop()
        stub.deactivate()


def raw_image(number: int, created: datetime, size: int = 8) -> dict[str, Any]:
    return {
        "ImageId": f"ami-{number:017x}",
        "Name": f"web-golden-{number:03d}",
        "State": "available",
        "CreationDate": created.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        "OwnerId": "123456789012",
        "BlockDeviceMappings": [
            {"DeviceName": "/dev/xvda", "Ebs": {"SnapshotId": f"snap-{number:017x}", "VolumeSize": size}}
        ],
        "Tags": [{"Key": "team", "Value": "web"}],
    }


def expect_images(stub: Stubber, pages: list[list[Any]], filters: list[dict[str, Any]] | None) -> None:
    params: dict[str, Any] = {"Owners": ["self"], "IncludeDisabled": True, "MaxResults": 1000}
    if filters:
        params["Filters"] = filters
    paged(stub, "describe_images", "Images", pages, **params)


def test_list_reads_every_page_filters_in_ec2_sorts_newest_first_and_caps(
    stubbed_bot: Any, slack: Any
) -> None:
    runtime, stub = stubbed_bot()
    now = datetime.now(UTC)
    # 32 images over three pages, in no particular order; image n is n days old
    images = [raw_image(n, now - timedelta(days=n, hours=1)) for n in (5, 1, 30, 2, 17, 9, 3, 4, 6, 7, 8)]
    images += [raw_image(n, now - timedelta(days=n, hours=1)) for n in range(10, 17)]
    images += [raw_image(n, now - timedelta(days=n, hours=1)) for n in range(18, 30)]
    images += [raw_image(31, now - timedelta(days=31, hours=1)), raw_image(32, now - timedelta(days=32))]
    assert len(images) == 32
    expect_images(
        stub,
        [images[:11], images[11:25], images[25:]],
        [{"Name": "name", "Values": ["web-*"]}, {"Name": "tag:team", "Values": ["web"]}],
    )
    in_use = f"ami-{2:017x}"
    expect_instances(
        stub,
        [
            [reservation(instance("i-01", "ami-somethingelse", "running"))],
            [],
            [reservation(instance("i-02", in_use, "stopped"))],
        ],
    )

    response, url = command(runtime, slack, "list --name 'web-*' --tag team=web")
    assert "Listing AMIs in us-east-1" in ack_text(response)
    text = answer_to(slack, url, "AMIs")
    stub.assert_no_pending_responses()  # every page of both lists was read

    assert "*32 AMIs* in us-east-1 (name matches “web-*”, tag team=web)" in text
    assert f"{32 * 8} GiB" in text
    shown = AMI.findall(text)
    expected = [f"ami-{n:017x}" for n in sorted([*range(1, 31), 31, 32])][:SHOW_AT_MOST]
    assert shown == expected  # newest first, capped
    assert "7 more — narrow with --name, --older-than or --tag" in text
    row = next(line for line in text.splitlines() if in_use in line)
    assert "web-golden-002 · 2d · available · 8 GiB · *▶ in use*" in row
    assert sum("in use*" in line for line in text.splitlines()) == 1


def test_list_older_than_is_applied_to_the_creation_date(stubbed_bot: Any, slack: Any) -> None:
    runtime, stub = stubbed_bot()
    now = datetime.now(UTC)
    images = [raw_image(n, now - timedelta(days=n)) for n in (1, 29, 31, 45)]
    expect_images(stub, [images[:2], images[2:]], None)
    expect_instances(stub, [[]])
    _, url = command(runtime, slack, "list --older-than 30d")
    text = answer_to(slack, url, "AMI")
    assert AMI.findall(text) == [f"ami-{31:017x}", f"ami-{45:017x}"]
    assert "*2 AMIs* in us-east-1 (older than 30d)" in text
    stub.assert_no_pending_responses()


def test_list_with_nothing_found_makes_no_instance_call(stubbed_bot: Any, slack: Any) -> None:
    runtime, stub = stubbed_bot()
    expect_images(stub, [[], []], [{"Name": "name", "Values": ["*nothing*"]}])
    _, url = command(runtime, slack, "list --name nothing")
    text = answer_to(slack, url, "No AMIs")
    assert text == "No AMIs owned by this account in us-east-1 (name contains “nothing”)."
    stub.assert_no_pending_responses()


def test_list_against_moto_filters_by_name_tag_and_age(
    bot: Any, slack: Any, moto: Any, instance: str
) -> None:
    runtime = bot()
    ec2 = moto.client("ec2")

    def image(name: str, **tags: str) -> str:
        spec = [{"ResourceType": "image", "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}]
        return str(ec2.create_image(InstanceId=instance, Name=name, TagSpecifications=spec)["ImageId"])

    web1 = image("web-golden-1", team="web")
    web2 = image("web-golden-2", team="web")
    other = image("web-canary", team="edge")
    db = image("db-golden-1", team="db")
    old = moto.backend("us-east-1").amis[web1]
    old.creation_date = old.creation_date - timedelta(days=40)
    ec2.run_instances(ImageId=web2, MinCount=1, MaxCount=1)

    _, url = command(runtime, slack, "list --name golden --tag team=web")
    text = answer_to(slack, url, "AMIs")
    assert sorted(AMI.findall(text)) == sorted([web1, web2])
    assert AMI.findall(text) == [web2, web1]  # newest first
    assert "40d" in next(line for line in text.splitlines() if web1 in line)
    assert "▶ in use" in next(line for line in text.splitlines() if web2 in line)
    assert "▶ in use" not in next(line for line in text.splitlines() if web1 in line)

    _, url = command(runtime, slack, "list --older-than 30d")
    assert AMI.findall(answer_to(slack, url, "AMI")) == [web1]

    _, url = command(runtime, slack, "list")
    assert set(AMI.findall(answer_to(slack, url, "AMIs"))) == {web1, web2, other, db}

    _, url = command(runtime, slack, "list --region eu-west-1")
    assert answer_to(slack, url, "No AMIs") == "No AMIs owned by this account in eu-west-1."


def test_rendering_helpers() -> None:
    assert [age(s) for s in (0, 59 * 60, 3600, 47 * 3600, 2 * 86400, 400 * 86400)] == [
        "0m",
        "59m",
        "1h",
        "47h",
        "2d",
        "400d",
    ]
    assert ec2_name_filter(None) is None
    assert ec2_name_filter("web") == "*web*"
    assert ec2_name_filter("web-?") == "web-?"
    text, blocks = render_list([], set(), region="us-east-1", account="prod", filters="", now=0)
    assert text == "No AMIs owned by this account in us-east-1 · account prod."
    assert len(blocks) == 1
