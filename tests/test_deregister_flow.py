"""Deregistration behind approval, through the real handlers: Redis (real), moto (server), fake Slack."""

from __future__ import annotations

import json
import threading
from typing import Any

from slack_bolt.request import BoltRequest

from bot.approvals import ApprovalState
from bot.context import Caller
from tests.conftest import SIGNING_SECRET
from tests.peers import wait_until
from tests.slack_requests import block_action_body, command_body, signed_headers

APPROVERS = {
    "amibot_approvers": "UAPPROVER,UAPPROVER2",
    "amibot_admins": "UADMIN",
    "amibot_approval_channel": "COPS",
}


def post(runtime: Any, body: str) -> Any:
    return runtime.bolt.dispatch(BoltRequest(body=body, headers=signed_headers(body, SIGNING_SECRET)))


def command(runtime: Any, slack: Any, text: str, user: str = "UASKER") -> tuple[str, str]:
    url = slack.new_response_url()
    response = post(runtime, command_body(text, user=user, response_url=url))
    assert response.status == 200
    return json.loads(response.body)["text"], url


def click(runtime: Any, slack: Any, action: str, approval_id: str, user: str) -> str:
    url = slack.new_response_url()
    response = post(
        runtime, block_action_body(action, approval_id, user=user, channel="COPS", response_url=url)
    )
    assert response.status == 200
    return url


def make_image(moto: Any, instance: str, name: str = "web-golden-2026-01-01") -> tuple[str, list[str]]:
    ec2 = moto.client("ec2")
    image_id = ec2.create_image(InstanceId=instance, Name=name)["ImageId"]
    image = ec2.describe_images(ImageIds=[image_id])["Images"][0]
    snaps = [m["Ebs"]["SnapshotId"] for m in image["BlockDeviceMappings"] if "Ebs" in m]
    assert snaps
    return image_id, snaps


def approval_message(slack: Any) -> Any:
    posts = slack.wait_for(
        lambda s: [p for p in s.posts("COPS") if "Approval needed" in p.params["text"]],
        what="approval message",
    )
    return posts[0]


def approval_id_in(message: Any) -> str:
    for block in message.params["blocks"]:
        for element in block.get("elements", []):
            if element.get("action_id") == "ami_approve":
                return str(element["value"])
    raise AssertionError("no Approve button")


def test_deregister_needs_a_second_person_then_deletes_image_and_snapshots(
    bot: Any, slack: Any, moto: Any, instance: str
) -> None:
    runtime = bot(**APPROVERS)
    image_id, snaps = make_image(moto, instance)
    # the requester is an approver too: four eyes still applies
    ack, url = command(runtime, slack, f"deregister {image_id} --reason 'replaced by v2'", user="UAPPROVER2")
    assert "Checking" in ack
    message = approval_message(slack)
    approval_id = approval_id_in(message)
    assert image_id in message.params["text"] and "UAPPROVER2" in message.params["text"]
    buttons = [
        e for b in message.params["blocks"] for e in b.get("elements", []) if e.get("type") == "button"
    ]
    assert {b["action_id"] for b in buttons} == {"ami_approve", "ami_reject", "ami_cancel"}
    approve = next(b for b in buttons if b["action_id"] == "ami_approve")
    assert approve["style"] == "primary" and "confirm" in approve
    slack.wait_for(
        lambda s: any(approval_id in c.params.get("text", "") for c in s.responses(url)), what="requested"
    )

    # the requester cannot approve, an outsider cannot either: ephemeral refusals, nothing changes
    own = click(runtime, slack, "ami_approve", approval_id, "UAPPROVER2")
    outsider = click(runtime, slack, "ami_approve", approval_id, "UOUTSIDER")
    slack.wait_for(lambda s: s.responses(own) and s.responses(outsider), what="refusals")
    assert "someone else" in slack.responses(own)[0].params["text"]
    assert "not an approver" in slack.responses(outsider)[0].params["text"]
    assert slack.responses(own)[0].params.get("replace_original") is not True
    assert runtime.services.approving._approvals.get(approval_id).state is ApprovalState.PENDING
    assert moto.client("ec2").describe_images(ImageIds=[image_id])["Images"]

    # an approver approves: the message loses its buttons, the image and its snapshots go
    click(runtime, slack, "ami_approve", approval_id, "UAPPROVER")
    updated = slack.wait_for(lambda s: [c for c in s.calls("chat.update") if c.ok], what="message updated")
    assert updated[0].params["ts"] == message.response["ts"]
    assert "Approved" in json.dumps(updated[0].params["blocks"]) and "ami_approve" not in json.dumps(
        updated[0].params
    )
    result = slack.wait_for(
        lambda s: [p for p in s.posts("CGENERAL") if "deregistered" in p.params["text"]], what="result notice"
    )
    ec2 = moto.client("ec2")
    assert ec2.describe_images(Filters=[{"Name": "image-id", "Values": [image_id]}])["Images"] == []
    left = ec2.describe_snapshots(Filters=[{"Name": "snapshot-id", "Values": snaps}])["Snapshots"]
    assert left == []
    for snap in snaps:
        assert f"snapshot `{snap}`: deleted" in result[0].params["text"]

    # a second click changes nothing more
    again = click(runtime, slack, "ami_approve", approval_id, "UADMIN")
    slack.wait_for(lambda s: s.responses(again), what="second click answer")
    assert "already approved" in slack.responses(again)[0].params["text"]
    entries = [e["action"] for e in runtime.audit.last(50)]
    assert entries.count("deregister.executed") == 1
    assert entries.count("approval.approved") == 1


def test_two_approvers_at_once_deregister_once(bot: Any, slack: Any, moto: Any, instance: str) -> None:
    runtime = bot(**APPROVERS)
    image_id, _ = make_image(moto, instance)
    command(runtime, slack, f"deregister {image_id}")
    approval_id = approval_id_in(approval_message(slack))
    barrier = threading.Barrier(4)

    def approve(user: str) -> None:
        barrier.wait()
        runtime.services.approving.click(
            __import__("bot.approvals", fromlist=["Decision"]).Decision.APPROVE,
            approval_id,
            Caller(user=user, channel="COPS", response_url=slack.new_response_url()),
        )

    threads = [
        threading.Thread(target=approve, args=(u,))
        for u in ("UAPPROVER", "UAPPROVER2", "UADMIN", "UAPPROVER")
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    approval = runtime.services.approving._approvals.get(approval_id)
    assert approval.state is ApprovalState.APPROVED and approval.job_id
    wait_until(lambda: runtime.jobs.get(approval.job_id).finished, what="job finished")
    entries = [e["action"] for e in runtime.audit.last(100)]
    assert entries.count("approval.approved") == 1
    assert entries.count("deregister.executed") == 1
    assert len([j for j in runtime.jobs.recent(50) if j.kind == "deregister"]) == 1


def test_in_use_image_is_refused_with_the_reason(bot: Any, slack: Any, moto: Any, instance: str) -> None:
    runtime = bot(**APPROVERS)
    image_id, _ = make_image(moto, instance)
    ec2 = moto.client("ec2")
    user = ec2.run_instances(ImageId=image_id, MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    ec2.stop_instances(InstanceIds=[user])
    _, url = command(runtime, slack, f"deregister {image_id}")
    answer = slack.wait_for(lambda s: s.responses(url), what="refusal")[0].params["text"]
    assert "Not deregistering" in answer and f"instance {user}" in answer
    assert not [p for p in slack.posts("COPS") if "Approval needed" in p.params["text"]]
    assert ec2.describe_images(ImageIds=[image_id])["Images"]


def test_reject_with_a_reason_through_the_modal(bot: Any, slack: Any, moto: Any, instance: str) -> None:
    runtime = bot(**APPROVERS)
    image_id, _ = make_image(moto, instance)
    command(runtime, slack, f"deregister {image_id}")
    approval_id = approval_id_in(approval_message(slack))
    click(runtime, slack, "ami_reject", approval_id, "UAPPROVER")
    view = slack.wait_for(lambda s: s.opened_views(), what="reject modal")[0]
    assert view["callback_id"] == "ami_reject_modal" and view["private_metadata"] == approval_id
    submission = {
        "type": "view_submission",
        "team": {"id": "T0001"},
        "user": {"id": "UAPPROVER", "team_id": "T0001"},
        "api_app_id": "A0001",
        "view": {
            **view,
            "id": "V1",
            "state": {
                "values": {"reason": {"reason": {"type": "plain_text_input", "value": "still needed by QA"}}}
            },
        },
    }
    from urllib.parse import urlencode

    response = post(runtime, urlencode({"payload": json.dumps(submission)}))
    assert response.status == 200
    wait_until(lambda: runtime.services.approving._approvals.get(approval_id).state is ApprovalState.REJECTED)
    told = slack.wait_for(
        lambda s: [p for p in s.posts("CGENERAL") if "rejected" in p.params["text"]], what="told"
    )
    assert "still needed by QA" in told[0].params["text"]
    assert moto.client("ec2").describe_images(ImageIds=[image_id])["Images"]


def test_unapproved_requests_expire_and_are_reminded(bot: Any, slack: Any, moto: Any, instance: str) -> None:
    runtime = bot(**APPROVERS, amibot_approval_ttl="3s", amibot_reminder_interval="1s")
    image_id, _ = make_image(moto, instance)
    command(runtime, slack, f"deregister {image_id}")
    message = approval_message(slack)
    approval_id = approval_id_in(message)
    reminders = slack.wait_for(
        lambda s: [p for p in s.posts("COPS") if p.params.get("thread_ts") == message.response["ts"]],
        what="a reminder in the thread",
    )
    assert "<@UAPPROVER>" in reminders[0].params["text"]
    wait_until(
        lambda: runtime.services.approving._approvals.get(approval_id).state is ApprovalState.EXPIRED,
        timeout=10,
    )
    slack.wait_for(
        lambda s: [c for c in s.calls("chat.update") if "Expired" in json.dumps(c.params)], what="update"
    )
    late = click(runtime, slack, "ami_approve", approval_id, "UAPPROVER")
    slack.wait_for(lambda s: s.responses(late), what="late click answer")
    assert "expired" in slack.responses(late)[0].params["text"]
    assert moto.client("ec2").describe_images(ImageIds=[image_id])["Images"]
