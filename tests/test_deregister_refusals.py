"""`/ami deregister` refuses, with the reason, an AMI that is still used or protected: one test per
kind of reference (real handlers, real Redis, moto server, fake Slack), a terminated instance that
does not count, and the re-check when an approved request is executed (things change in 24 hours).

tests/test_deregister_flow.py covers the happy path, four eyes, reject, expiry; this file covers what
makes amibot refuse.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from slack_bolt.request import BoltRequest

from bot.approvals import ApprovalState
from bot.models import JobState
from tests.conftest import SIGNING_SECRET
from tests.peers import wait_until
from tests.slack_requests import block_action_body, command_body, signed_headers

REGION = "us-east-1"
SETTINGS = {
    "amibot_approvers": "UAPPROVER",
    "amibot_admins": "UADMIN",
    "amibot_approval_channel": "COPS",
    "amibot_regions": REGION,
}


# --- driving the bot ---------------------------------------------------------------------------


def post(runtime: Any, body: str) -> Any:
    response = runtime.bolt.dispatch(BoltRequest(body=body, headers=signed_headers(body, SIGNING_SECRET)))
    assert response.status == 200, response.body
    return response


def deregister(runtime: Any, slack: Any, image_id: str, user: str = "UASKER") -> str:
    """`/ami deregister IMAGE`; returns the command's response URL (the check answers there)."""
    url = slack.new_response_url()
    ack = json.loads(post(runtime, command_body(f"deregister {image_id}", user=user, response_url=url)).body)
    assert "Checking" in ack["text"], ack
    return url


def answer(slack: Any, url: str) -> str:
    return str(
        slack.wait_for(lambda s: s.responses(url), what="the check's answer", timeout=10)[0].params["text"]
    )


def approval_posts(slack: Any) -> list[Any]:
    return [p for p in slack.posts("COPS") if "Approval needed" in p.params["text"]]


def approval_id_in(message: Any) -> str:
    for block in message.params["blocks"]:
        for element in block.get("elements", []):
            if element.get("action_id") == "ami_approve":
                return str(element["value"])
    raise AssertionError("no Approve button")


def audit_actions(runtime: Any) -> list[str]:
    return [e["action"] for e in runtime.audit.last(100)]


# --- the AWS account ---------------------------------------------------------------------------


def new_image(moto: Any, name: str = "web-golden-2026-01-01") -> tuple[str, str]:
    """A registered AMI and its snapshot (moto gives every image one)."""
    ec2 = moto.client("ec2", REGION)
    image_id = str(ec2.register_image(Name=name)["ImageId"])
    image = ec2.describe_images(ImageIds=[image_id])["Images"][0]
    return image_id, str(image["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"])


def run_from(moto: Any, image_id: str) -> str:
    run = moto.client("ec2", REGION).run_instances(ImageId=image_id, MinCount=1, MaxCount=1)
    return str(run["Instances"][0]["InstanceId"])


def stopped_instance(moto: Any, image_id: str) -> str:
    instance = run_from(moto, image_id)
    moto.client("ec2", REGION).stop_instances(InstanceIds=[instance])
    return f"instance {instance} (stopped)"


def old_launch_template_version(moto: Any, image_id: str) -> str:
    """v1 uses the AMI; v2 (another AMI) is both $Default and $Latest: v1 is neither."""
    ec2 = moto.client("ec2", REGION)
    other, _ = new_image(moto, "web-golden-2026-02-01")
    template = ec2.create_launch_template(
        LaunchTemplateName="web-lt", LaunchTemplateData={"ImageId": image_id}
    )
    template_id = template["LaunchTemplate"]["LaunchTemplateId"]
    ec2.create_launch_template_version(LaunchTemplateName="web-lt", LaunchTemplateData={"ImageId": other})
    ec2.modify_launch_template(LaunchTemplateName="web-lt", DefaultVersion="2")
    return f"launch template {template_id} v1"


def launch_configuration(moto: Any, image_id: str) -> str:
    moto.client("autoscaling", REGION).create_launch_configuration(
        LaunchConfigurationName="web-lc", ImageId=image_id, InstanceType="t3.micro"
    )
    return "launch configuration web-lc"


def group_via_latest_template(moto: Any, image_id: str) -> str:
    ec2 = moto.client("ec2", REGION)
    template = ec2.create_launch_template(
        LaunchTemplateName="asg-lt", LaunchTemplateData={"ImageId": image_id, "InstanceType": "t3.micro"}
    )
    template_id = template["LaunchTemplate"]["LaunchTemplateId"]
    moto.client("autoscaling", REGION).create_auto_scaling_group(
        AutoScalingGroupName="web-asg",
        LaunchTemplate={"LaunchTemplateName": "asg-lt", "Version": "$Latest"},
        MinSize=0,
        MaxSize=0,
        DesiredCapacity=0,
        AvailabilityZones=[f"{REGION}a"],
    )
    return f"auto scaling group web-asg (via {template_id} v1)"


def group_via_launch_configuration(moto: Any, image_id: str) -> str:
    autoscaling = moto.client("autoscaling", REGION)
    autoscaling.create_launch_configuration(
        LaunchConfigurationName="asg-lc", ImageId=image_id, InstanceType="t3.micro"
    )
    autoscaling.create_auto_scaling_group(
        AutoScalingGroupName="lc-asg",
        LaunchConfigurationName="asg-lc",
        MinSize=0,
        MaxSize=0,
        DesiredCapacity=0,
        AvailabilityZones=[f"{REGION}a"],
    )
    return "auto scaling group lc-asg (via launch configuration asg-lc)"


def protect_tag(moto: Any, image_id: str) -> str:
    moto.client("ec2", REGION).create_tags(
        Resources=[image_id], Tags=[{"Key": "amibot:keep", "Value": "release 1.0"}]
    )
    return "it carries the protect tag `amibot:keep`"


# Each sets up one reason to refuse and returns the words the refusal must contain.
REASONS: dict[str, Callable[[Any, str], str]] = {
    "stopped instance": stopped_instance,
    "old launch template version": old_launch_template_version,
    "launch configuration": launch_configuration,
    "auto scaling group via template $Latest": group_via_latest_template,
    "auto scaling group via launch configuration": group_via_launch_configuration,
    "protect tag": protect_tag,
}


# --- the tests ---------------------------------------------------------------------------------


@pytest.mark.parametrize("reason", list(REASONS))
def test_a_used_or_protected_ami_is_refused_and_the_refusal_names_why(
    reason: str, bot: Any, slack: Any, moto: Any
) -> None:
    runtime = bot(**SETTINGS)
    image_id, snapshot = new_image(moto)
    expected = REASONS[reason](moto, image_id)

    text = answer(slack, deregister(runtime, slack, image_id))

    assert text.startswith(f"⛔ Not deregistering `{image_id}` in {REGION}"), text
    assert expected in text, (expected, text)
    # nobody is asked, nothing is deleted, and the refusal is on the record
    assert approval_posts(slack) == []
    assert runtime.services.approving._approvals.pending() == []
    ec2 = moto.client("ec2", REGION)
    assert ec2.describe_images(ImageIds=[image_id])["Images"]
    assert ec2.describe_snapshots(SnapshotIds=[snapshot])["Snapshots"]
    refused = [e for e in runtime.audit.last(20) if e["action"] == "deregister.refused"]
    assert len(refused) == 1 and refused[0]["target"] == image_id and expected in refused[0]["result"]


def test_an_ami_only_a_terminated_instance_used_is_not_refused(bot: Any, slack: Any, moto: Any) -> None:
    runtime = bot(**SETTINGS)
    image_id, _ = new_image(moto)
    ec2 = moto.client("ec2", REGION)
    gone = run_from(moto, image_id)
    ec2.terminate_instances(InstanceIds=[gone])
    states = ec2.describe_instances(InstanceIds=[gone])["Reservations"][0]["Instances"]
    assert states[0]["State"]["Name"] == "terminated"  # still listed by EC2, but it no longer counts

    text = answer(slack, deregister(runtime, slack, image_id))

    assert "Approval `a-" in text and "requested" in text, text
    message = slack.wait_for(approval_posts, what="the approval message")[0]
    assert image_id in message.params["text"]
    assert "deregister.refused" not in audit_actions(runtime)


def test_an_ami_used_after_the_request_was_approved_is_not_deregistered(
    bot: Any, slack: Any, moto: Any
) -> None:
    """Approval can come hours later: the job checks again and refuses, saying why."""
    runtime = bot(**SETTINGS)
    image_id, snapshot = new_image(moto)
    deregister(runtime, slack, image_id)
    message = slack.wait_for(approval_posts, what="the approval message")[0]
    approval_id = approval_id_in(message)

    instance = run_from(moto, image_id)  # someone launches the AMI while the request waits
    url = slack.new_response_url()
    post(
        runtime,
        block_action_body("ami_approve", approval_id, user="UAPPROVER", channel="COPS", response_url=url),
    )

    approvals = runtime.services.approving._approvals
    job_id = wait_until(lambda: approvals.get(approval_id).job_id, what="the deregistration job")
    job = wait_until(
        lambda: (j := runtime.jobs.get(job_id)) is not None and j.finished and j, timeout=15, what="job done"
    )
    assert approvals.get(approval_id).state is ApprovalState.APPROVED
    assert job.state is JobState.FAILED
    assert f"instance {instance} (running)" in (job.error or ""), job.error

    result = slack.wait_for(
        lambda s: [p for p in s.posts("CGENERAL") if job_id in p.params["text"]],
        what="the result",
        timeout=10,
    )
    text = result[0].params["text"]
    assert f"`{image_id}` not deregistered: it is in use by instance {instance} (running)" in text, text
    assert "deleted" not in text
    # the approval's thread says it too
    thread = slack.wait_for(
        lambda s: [p for p in s.posts("COPS") if p.params.get("thread_ts") == message.response["ts"]],
        what="the result in the approval's thread",
    )
    assert "not deregistered" in thread[0].params["text"]
    ec2 = moto.client("ec2", REGION)
    assert ec2.describe_images(ImageIds=[image_id])["Images"]
    assert ec2.describe_snapshots(SnapshotIds=[snapshot])["Snapshots"]
    executed = [e for e in runtime.audit.last(50) if e["action"] == "deregister.executed"]
    assert len(executed) == 1 and executed[0]["result"].startswith("not deregistered: it is in use"), executed
