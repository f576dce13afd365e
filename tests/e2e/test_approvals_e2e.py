"""`/ami deregister` behind four-eyes approval, end to end: signed slash commands, button clicks and
a modal submission to the real `amibot run --http` process; the image and its snapshots in the
moto server; the approval message, its in-place updates and the answers in the fake Slack.

moto gives every AMI exactly one snapshot; real AMIs often have several (root and data volumes),
so `images_with_two_snapshots` adds a data-volume snapshot to an AMI in moto's backend (the server
runs in this process) and the result message must list both.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlencode

import pytest

from tests.e2e.harness import Asker, BotProcess, Gate, ack_text, block_actions_body, metric
from tests.peers import MotoServer, wait_until

pytestmark = pytest.mark.e2e

REGION = "us-east-1"
ROLES = {
    "AMIBOT_APPROVERS": "UAPPROVER,UAPPROVER2",
    "AMIBOT_ADMINS": "UADMIN",
    "AMIBOT_APPROVAL_CHANNEL": "COPS",
}
APPROVAL_ID = re.compile(r"^a-[0-9a-f]{6}$")
STAMP = r"\d{4}-\d\d-\d\d \d\d:\d\d UTC"


# --- the AWS account -----------------------------------------------------------------------------


@pytest.fixture
def images_with_two_snapshots(moto: MotoServer, monkeypatch: pytest.MonkeyPatch) -> MotoServer:
    """moto's AMIs list `extra_snapshots` (set by `golden_image`) after their own root snapshot."""
    from moto.ec2.models.amis import Ami

    own = Ami.block_device_mappings

    def mappings(self: Any) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = own.fget(self)  # type: ignore[attr-defined]
        for n, snapshot in enumerate(getattr(self, "extra_snapshots", ())):
            ebs = {
                "SnapshotId": snapshot.id,
                "VolumeSize": 20,
                "DeleteOnTermination": True,
                "VolumeType": "gp3",
            }
            found.append({"DeviceName": f"/dev/sd{chr(ord('b') + n)}", "Ebs": ebs})
        return found

    monkeypatch.setattr(Ami, "block_device_mappings", property(mappings))
    return moto


def golden_image(moto: MotoServer, name: str = "web-golden-2026-01-01") -> tuple[str, list[str]]:
    """An AMI with a root and a data-volume snapshot: (image id, [snapshot ids])."""
    ec2 = moto.client("ec2", REGION)
    image_id = str(ec2.register_image(Name=name)["ImageId"])
    volume = ec2.create_volume(Size=20, AvailabilityZone=f"{REGION}a")["VolumeId"]
    data = ec2.create_snapshot(VolumeId=volume, Description=f"data volume of {image_id}")["SnapshotId"]
    backend = moto.backend(REGION)
    backend.snapshots[data].from_ami = image_id  # like the root one: in use while the image exists
    backend.amis[image_id].extra_snapshots = [backend.snapshots[data]]
    image = ec2.describe_images(ImageIds=[image_id])["Images"][0]
    snapshots = [m["Ebs"]["SnapshotId"] for m in image["BlockDeviceMappings"]]
    assert len(snapshots) == 2 and snapshots[1] == data
    return image_id, snapshots


def image_exists(moto: MotoServer, image_id: str) -> bool:
    ec2 = moto.client("ec2", REGION)
    return bool(ec2.describe_images(Filters=[{"Name": "image-id", "Values": [image_id]}])["Images"])


def snapshots_left(moto: MotoServer, snapshot_ids: list[str]) -> list[str]:
    ec2 = moto.client("ec2", REGION)
    found = ec2.describe_snapshots(Filters=[{"Name": "snapshot-id", "Values": snapshot_ids}])["Snapshots"]
    return sorted(s["SnapshotId"] for s in found)


# --- talking to the bot as Slack does ------------------------------------------------------------


def person(user: str, channel: str = "COPS") -> Asker:
    return Asker(user=user, user_name=user.lower(), channel=channel, channel_name=channel.lower())


def request_deregistration(
    bot: BotProcess, slack: Any, image_id: str, requester: str = "UASKER"
) -> tuple[str, Any, str]:
    """`/ami deregister` up to the approval message: (approval id, its chat.postMessage, the
    command's response URL)."""
    url = slack.new_response_url()
    resp = bot.command(f"deregister {image_id} --reason 'replaced by v2'", url, person(requester, "CGENERAL"))
    assert resp.seconds < 3 and "Checking" in ack_text(resp), resp
    message = slack.wait_for(
        lambda s: [p for p in s.posts("COPS") if image_id in p.params["text"]],
        timeout=15,
        what="the approval message",
    )[0]
    approve = [b for b in buttons(message.params["blocks"]) if b["action_id"] == "ami_approve"]
    assert len(approve) == 1, message.params["blocks"]
    return str(approve[0]["value"]), message, url


def click(bot: BotProcess, slack: Any, action: str, approval_id: str, user: str, message: Any) -> str:
    """A signed button click on the approval message; returns its response URL."""
    url = slack.new_response_url()
    body = block_actions_body(action, approval_id, url, asker=person(user), message_ts=message.response["ts"])
    resp = bot.post_signed(body)
    assert resp.status == 200 and resp.seconds < 3, resp
    return url


def said(slack: Any, url: str, what: str = "the answer") -> str:
    """The one answer sent to a response URL (an ephemeral one)."""
    calls = slack.wait_for(lambda s: [c for c in s.responses(url) if c.ok], timeout=10, what=what)
    assert len(calls) == 1, calls
    assert calls[0].params.get("response_type") == "ephemeral", calls[0].params
    assert not calls[0].params.get("replace_original"), calls[0].params
    return str(calls[0].params["text"])


def buttons(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for b in blocks for e in b.get("elements", []) if e.get("type") == "button"]


def updates(slack: Any, message: Any) -> list[Any]:
    """chat.update calls on the approval message (same channel and ts)."""
    return [
        c
        for c in slack.calls("chat.update")
        if c.ok and c.params["channel"] == "COPS" and c.params["ts"] == message.response["ts"]
    ]


def shown(blocks: list[dict[str, Any]]) -> str:
    """A message's blocks as a person reads them."""
    parts: list[str] = []
    for block in blocks:
        if "text" in block:
            parts.append(block["text"]["text"])
        parts += [f["text"] for f in block.get("fields", [])]
        parts += [e["text"] for e in block.get("elements", []) if isinstance(e.get("text"), str)]
    return "\n".join(parts)


def results(slack: Any, image_id: str) -> list[Any]:
    """Result messages in the asking channel (top level) for the image."""
    return [
        p
        for p in slack.posts("CGENERAL")
        if f"`{image_id}`" in p.params["text"] and "job `j-" in p.params["text"]
    ]


def audit_actions(bot: BotProcess, slack: Any) -> list[str]:
    """The actions in `/ami audit` (asked as an admin), newest first."""
    text = ack_text(bot.command("audit 50", slack.new_response_url(), person("UADMIN", "CGENERAL")))
    return re.findall(r"> ([a-z]+\.[a-z]+) `", text)


# --- the tests -----------------------------------------------------------------------------------


def test_four_eyes_then_the_image_and_its_snapshots_go_and_the_message_is_updated(
    start_bot: Callable[..., BotProcess], slack: Any, images_with_two_snapshots: MotoServer
) -> None:
    moto = images_with_two_snapshots
    bot = start_bot(**ROLES)
    image_id, snapshots = golden_image(moto)
    # the requester is an approver too: four eyes still applies
    approval_id, message, url = request_deregistration(bot, slack, image_id, requester="UAPPROVER2")

    assert APPROVAL_ID.match(approval_id), approval_id
    assert message.params["channel"] == "COPS"
    approve, reject = (b for b in buttons(message.params["blocks"]) if b["action_id"] != "ami_cancel")
    assert (approve["action_id"], approve["style"], approve["value"]) == (
        "ami_approve",
        "primary",
        approval_id,
    )
    assert set(approve["confirm"]) >= {"title", "text", "confirm", "deny"}
    assert image_id in approve["confirm"]["text"]["text"]
    assert (reject["action_id"], reject["style"], reject["value"]) == ("ami_reject", "danger", approval_id)
    body = shown(message.params["blocks"])
    for part in (
        f"<@UAPPROVER2> asks to deregister `{image_id}`",
        "replaced by v2",
        "2 (35 GiB)",
        approval_id,
    ):
        assert part in body, (part, body)
    assert f"Approval `{approval_id}` requested in <#COPS>" in said(slack, url)

    # the requester may not approve their own request; an outsider may not approve at all
    own = click(bot, slack, "ami_approve", approval_id, "UAPPROVER2", message)
    assert "someone else must approve it (four eyes); nothing was done" in said(slack, own)
    outsider = click(bot, slack, "ami_approve", approval_id, "UOUTSIDER", message)
    assert "you are not an approver for amibot" in said(slack, outsider)
    assert image_exists(moto, image_id) and snapshots_left(moto, snapshots) == sorted(snapshots)
    assert updates(slack, message) == []

    # an approver approves: the image and both snapshots go
    click(bot, slack, "ami_approve", approval_id, "UAPPROVER", message)
    wait_until(lambda: not image_exists(moto, image_id), timeout=15, what="the image deregistered")
    wait_until(lambda: snapshots_left(moto, snapshots) == [], timeout=15, what="the snapshots deleted")

    # the message is updated in place: no buttons, who decided and when
    update = slack.wait_for(lambda s: updates(s, message), timeout=10, what="the message updated")
    assert len(update) == 1
    assert buttons(update[0].params["blocks"]) == []
    decided = shown(update[0].params["blocks"])
    assert re.search(rf"✅ \*Approved\* by <@UAPPROVER> at {STAMP} — job `j-[0-9a-f]{{6}}`", decided), decided
    in_channel = [m for m in slack.messages("COPS") if m.ts == message.response["ts"]]
    assert (
        len(in_channel) == 1
        and len(in_channel[0].versions) == 1
        and "Approved" in shown(in_channel[0].blocks)
    )

    # the result lists each snapshot, in the asking channel and in the approval's thread
    result = slack.wait_for(lambda s: results(s, image_id), timeout=15, what="the result")[0]
    lines = result.params["text"].splitlines()
    assert lines[0].startswith(f"🗑️ `{image_id}` (web-golden-2026-01-01) deregistered in {REGION}"), lines
    assert "requested by <@UAPPROVER2>" in lines[0]
    assert sorted(lines[1:]) == sorted(f"✅ snapshot `{s}`: deleted" for s in snapshots), lines
    thread = slack.wait_for(
        lambda s: [p for p in s.posts("COPS") if p.params.get("thread_ts") == message.response["ts"]],
        what="the result in the thread",
    )
    assert thread[0].params["text"] == result.params["text"]

    # a second click changes nothing more
    again = click(bot, slack, "ami_approve", approval_id, "UADMIN", message)
    assert f"approval {approval_id} was already approved by <@UAPPROVER>; nothing more was done" in said(
        slack, again
    )
    wait_until(lambda: metric(bot.metrics(), "amibot_outbox_pending") == 0, what="the outbox drained")
    assert len(updates(slack, message)) == 1 and len(results(slack, image_id)) == 1
    actions = audit_actions(bot, slack)
    assert actions.count("approval.approved") == 1 and actions.count("deregister.executed") == 1, actions


def test_reject_through_the_modal_deletes_nothing_and_tells_the_requester(
    start_bot: Callable[..., BotProcess], slack: Any, images_with_two_snapshots: MotoServer
) -> None:
    moto = images_with_two_snapshots
    bot = start_bot(**ROLES)
    image_id, snapshots = golden_image(moto)
    approval_id, message, _ = request_deregistration(bot, slack, image_id)

    # only approvers get the modal
    outsider = click(bot, slack, "ami_reject", approval_id, "UOUTSIDER", message)
    assert "not an approver" in said(slack, outsider)
    assert slack.opened_views() == []

    url = slack.new_response_url()
    body = block_actions_body(
        "ami_reject", approval_id, url, asker=person("UAPPROVER"), message_ts=message.response["ts"]
    )
    trigger_id = json.loads(parse_qs(body.decode())["payload"][0])["trigger_id"]
    assert bot.post_signed(body).status == 200
    opened = slack.wait_for(lambda s: s.calls("views.open"), what="the reject modal")
    assert opened[0].ok and opened[0].params["trigger_id"] == trigger_id
    view = slack.opened_views()[0]
    assert (view["type"], view["callback_id"], view["private_metadata"]) == (
        "modal",
        "ami_reject_modal",
        approval_id,
    )
    assert [b["block_id"] for b in view["blocks"] if b["type"] == "input"] == ["reason"]

    # Slack sends the submitted view back, with what was typed in it
    typed = {"reason": {"reason": {"type": "plain_text_input", "value": "  still needed by QA  "}}}
    submission = {
        "type": "view_submission",
        "team": {"id": "T0001", "domain": "example"},
        "user": {"id": "UAPPROVER", "username": "uapprover", "team_id": "T0001"},
        "api_app_id": "A0FAKESLACK",
        "token": "legacy-verification-token",
        "trigger_id": slack.new_trigger_id(),
        "view": {**view, "state": {"values": typed}},
    }
    resp = bot.post_signed(urlencode({"payload": json.dumps(submission)}).encode())
    assert resp.status == 200 and resp.seconds < 3 and resp.body in (b"", b"{}"), resp  # closes the modal

    update = slack.wait_for(lambda s: updates(s, message), timeout=10, what="the message updated")
    assert buttons(update[0].params["blocks"]) == []
    decided = shown(update[0].params["blocks"])
    assert re.search(rf"❌ \*Rejected\* by <@UAPPROVER> at {STAMP}: still needed by QA", decided), decided
    told = slack.wait_for(
        lambda s: [p for p in s.posts("CGENERAL") if approval_id in p.params["text"]],
        what="the requester told",
    )
    assert told[0].params["text"] == (
        f"<@UASKER> your deregister request `{approval_id}` was rejected by <@UAPPROVER>: still needed by QA."
    )
    late = click(bot, slack, "ami_approve", approval_id, "UAPPROVER2", message)
    assert "was already rejected by <@UAPPROVER>" in said(slack, late)
    assert image_exists(moto, image_id) and snapshots_left(moto, snapshots) == sorted(snapshots)
    assert "deregister.executed" not in audit_actions(bot, slack)


def test_an_unanswered_request_expires_and_a_late_click_is_refused(
    start_bot: Callable[..., BotProcess], slack: Any, images_with_two_snapshots: MotoServer
) -> None:
    moto = images_with_two_snapshots
    bot = start_bot(**ROLES, AMIBOT_APPROVAL_TTL="2s", AMIBOT_REMINDER_INTERVAL="1h")
    image_id, snapshots = golden_image(moto)
    approval_id, message, _ = request_deregistration(bot, slack, image_id)

    update = slack.wait_for(lambda s: updates(s, message), timeout=15, what="the message updated on expiry")
    assert buttons(update[0].params["blocks"]) == []
    assert re.search(rf"⌛ \*Expired\* at {STAMP}: nobody decided in time", shown(update[0].params["blocks"]))
    told = slack.wait_for(
        lambda s: [p for p in s.posts("CGENERAL") if approval_id in p.params["text"]],
        what="the requester told",
    )
    assert "expired without a decision; nothing was done" in told[0].params["text"]

    late = click(bot, slack, "ami_approve", approval_id, "UAPPROVER", message)
    assert said(slack, late) == f"⚠️ approval {approval_id} has expired; nothing was done"
    assert image_exists(moto, image_id) and snapshots_left(moto, snapshots) == sorted(snapshots)
    assert len(updates(slack, message)) == 1
    status = ack_text(bot.command("status", slack.new_response_url()))
    assert approval_id not in status


@pytest.mark.parametrize("where", ["after DeregisterImage", "after the first DeleteSnapshot"])
def test_kill_9_during_the_deregistration_job_then_it_finishes_once(
    where: str,
    start_bot: Callable[..., BotProcess],
    slack: Any,
    images_with_two_snapshots: MotoServer,
    moto_gate: Callable[..., Gate],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The approved job dies with the process (kill -9) once AWS has done part of it but before the
    bot recorded that; a new process resumes it: one deregistration, every snapshot gone, one result."""
    from moto.ec2.responses.amis import AmisResponse
    from moto.ec2.responses.elastic_block_store import ElasticBlockStore

    moto = images_with_two_snapshots
    deregister_calls: list[str] = []
    original = AmisResponse.deregister_image

    def counted(self: Any) -> Any:
        deregister_calls.append(self._get_param("ImageId"))
        return original(self)

    monkeypatch.setattr(AmisResponse, "deregister_image", counted)
    if where == "after DeregisterImage":
        gate = moto_gate(AmisResponse, "deregister_image", after=True)
    else:
        gate = moto_gate(ElasticBlockStore, "delete_snapshot", after=True)

    bot = start_bot(**ROLES)
    image_id, snapshots = golden_image(moto)
    approval_id, message, _ = request_deregistration(bot, slack, image_id)
    click(bot, slack, "ami_approve", approval_id, "UAPPROVER", message)
    assert gate.entered.wait(15), f"the job never got {where}"
    bot.kill()
    gate.release()

    assert not image_exists(moto, image_id)
    assert len(snapshots_left(moto, snapshots)) == (2 if where == "after DeregisterImage" else 1)
    assert results(slack, image_id) == []

    bot.start()
    result = slack.wait_for(lambda s: results(s, image_id), timeout=20, what="the result after the restart")
    wait_until(lambda: metric(bot.metrics(), "amibot_outbox_pending") == 0, what="the outbox drained")
    wait_until(lambda: metric(bot.metrics(), "amibot_work_due") == 0, what="no work left")
    assert snapshots_left(moto, snapshots) == []
    assert deregister_calls == [image_id]
    assert len(results(slack, image_id)) == 1
    lines = result[0].params["text"].splitlines()
    assert "deregistered" in lines[0], lines
    assert sorted(line.split(":")[0] for line in lines[1:]) == sorted(f"✅ snapshot `{s}`" for s in snapshots)
    assert all(": deleted" in line for line in lines[1:]), lines
    thread = [p for p in slack.posts("COPS") if p.params.get("thread_ts") == message.response["ts"]]
    assert len(thread) == 1
    assert audit_actions(bot, slack).count("deregister.executed") == 1


def test_an_ami_in_use_is_refused_over_http_for_each_kind_of_reference(
    start_bot: Callable[..., BotProcess], slack: Any, moto: MotoServer
) -> None:
    """Every kind of use (a stopped instance, an old launch template version, a launch
    configuration, an auto scaling group by template or by launch configuration) and the protect
    tag: refused before anyone is asked, with the reason, through the real process."""
    from tests.test_deregister_refusals import REASONS, new_image

    bot = start_bot(**ROLES)
    for n, (reason, set_up) in enumerate(REASONS.items()):
        image_id, snapshot = new_image(moto, f"web-golden-2026-01-{n + 10}")
        expected = set_up(moto, image_id)
        url = slack.new_response_url()
        resp = bot.command(f"deregister {image_id}", url, person("UASKER", "CGENERAL"))
        assert resp.status == 200 and resp.seconds < 3 and "Checking" in ack_text(resp), (reason, resp)
        text = said(slack, url, f"the refusal ({reason})")
        assert text.startswith(f"⛔ Not deregistering `{image_id}` in {REGION}"), (reason, text)
        assert expected in text, (reason, expected, text)
        assert image_exists(moto, image_id) and snapshots_left(moto, [snapshot]) == [snapshot], reason
    assert slack.posts("COPS") == []  # nobody was asked
    refused = [a for a in audit_actions(bot, slack) if a == "deregister.refused"]
    assert len(refused) == len(REASONS)
