"""Who may do what, through the real handlers (signed requests), real Redis, moto server, fake Slack:
approvers named by a Slack user group (resolved with usergroups.users.list and cached in Redis),
cancelling a request, the workspace and channel checks, `/ami audit`, `/ami protect`/`unprotect`.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any

from slack_bolt.request import BoltRequest

from bot.approvals import ApprovalState
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
GROUP = "SAPPROVERS"
LOOKUP = "usergroups.users.list"


# --- driving the bot ---------------------------------------------------------------------------


def dispatch(runtime: Any, body: str) -> Any:
    return runtime.bolt.dispatch(BoltRequest(body=body, headers=signed_headers(body, SIGNING_SECRET)))


def command(
    runtime: Any, slack: Any, text: str, user: str = "UASKER", **where: str
) -> tuple[dict[str, Any], str]:
    """`/ami TEXT`: (the ack's JSON body, the command's response URL)."""
    url = slack.new_response_url()
    response = dispatch(runtime, command_body(text, user=user, response_url=url, **where))
    assert response.status == 200, response.body
    return json.loads(response.body), url


def click(runtime: Any, slack: Any, action: str, value: str, user: str, channel: str = "COPS") -> str:
    """A button click; returns its response URL (where a refusal goes)."""
    url = slack.new_response_url()
    body = block_action_body(action, value, user=user, channel=channel, response_url=url)
    response = dispatch(runtime, body)
    assert response.status == 200, response.body
    return url


def told(slack: Any, url: str, what: str = "the answer") -> str:
    return str(slack.wait_for(lambda s: s.responses(url), what=what, timeout=10)[0].params["text"])


def new_image(moto: Any, name: str = "web-golden-2026-01-01") -> str:
    return str(moto.client("ec2", REGION).register_image(Name=name)["ImageId"])


def image_exists(moto: Any, image_id: str) -> bool:
    found = moto.client("ec2", REGION).describe_images(Filters=[{"Name": "image-id", "Values": [image_id]}])
    return bool(found["Images"])


def tags_of(moto: Any, image_id: str) -> dict[str, str]:
    image = moto.client("ec2", REGION).describe_images(ImageIds=[image_id])["Images"][0]
    return {t["Key"]: t["Value"] for t in image.get("Tags", [])}


def request_approval(runtime: Any, slack: Any, image_id: str, user: str = "UASKER") -> tuple[str, Any]:
    """`/ami deregister IMAGE` up to the approval message: (approval id, the message's post)."""
    command(runtime, slack, f"deregister {image_id}", user=user)
    posts = slack.wait_for(
        lambda s: [
            p for p in s.posts("COPS") if image_id in p.params["text"] and "Approval" in p.params["text"]
        ],
        what="the approval message",
        timeout=10,
    )
    for block in posts[0].params["blocks"]:
        for element in block.get("elements", []):
            if element.get("action_id") == "ami_approve":
                return str(element["value"]), posts[0]
    raise AssertionError("no Approve button")


def state_of(runtime: Any, approval_id: str) -> ApprovalState:
    return runtime.services.approving._approvals.get(approval_id).state


def updates_of(slack: Any, message: Any) -> list[Any]:
    """chat.update calls on the approval message (in place: same channel and ts)."""
    return [
        c
        for c in slack.calls("chat.update")
        if c.ok and c.params["channel"] == "COPS" and c.params["ts"] == message.response["ts"]
    ]


def buttons_in(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    found = [e for b in blocks for e in b.get("elements", []) if e.get("type") == "button"]
    return found + [b["accessory"] for b in blocks if b.get("accessory", {}).get("type") == "button"]


# --- approvers by user group ---------------------------------------------------------------------


def test_an_approver_named_by_a_user_group_approves_and_the_group_is_cached(
    bot: Any, slack: Any, moto: Any, redis_srv: Any, prefix: str
) -> None:
    slack.set_usergroup(GROUP, ["UGROUPIE", "UCOLLEAGUE"])
    runtime = bot(**{**SETTINGS, "amibot_approvers": GROUP})
    # the scheduled refresh reads the group once at start, so clicks find it in Redis
    key = f"{prefix}usergroup:{GROUP}"
    wait_until(lambda: redis_srv.client().get(key), what="the group cached by the scheduled refresh")
    cached = json.loads(redis_srv.client().get(key))
    assert cached["members"] == ["UGROUPIE", "UCOLLEAGUE"] and cached["fetched_at"] <= time.time()
    assert [c.params.get("usergroup") for c in slack.calls(LOOKUP)] == [GROUP]
    image_id = new_image(moto)
    approval_id, _ = request_approval(runtime, slack, image_id)

    # someone outside the group: refused, from the cache
    outsider = click(runtime, slack, "ami_approve", approval_id, "UOUTSIDER")
    assert "not an approver" in told(slack, outsider)

    # a member approves (from the cache: no second lookup), and it happens
    click(runtime, slack, "ami_approve", approval_id, "UGROUPIE")
    wait_until(lambda: not image_exists(moto, image_id), timeout=15, what="the image deregistered")
    assert state_of(runtime, approval_id) is ApprovalState.APPROVED
    again = click(runtime, slack, "ami_approve", approval_id, "UGROUPIE")
    assert "already approved by <@UGROUPIE>" in told(slack, again)
    assert len(slack.calls(LOOKUP)) == 1


def test_a_failing_group_lookup_refuses_clearly_or_uses_a_stale_cache(
    bot: Any, slack: Any, moto: Any, redis_srv: Any, prefix: str
) -> None:
    slack.set_usergroup(GROUP, ["UGROUPIE"])
    slack.fail_next(LOOKUP, "error:fatal_error")  # the scheduled refresh at start fails too
    runtime = bot(**{**SETTINGS, "amibot_approvers": GROUP})
    slack.wait_for(lambda s: s.calls(LOOKUP), what="the refresh at start")
    image_id = new_image(moto)
    approval_id, _ = request_approval(runtime, slack, image_id)

    # Slack fails and nothing is cached: a clear refusal, nothing changes
    slack.fail_next(LOOKUP, "error:fatal_error")
    refused = click(runtime, slack, "ami_approve", approval_id, "UGROUPIE")
    text = told(slack, refused)
    assert f"could not look up the members of user group {GROUP} in Slack (fatal_error); try again" in text
    assert state_of(runtime, approval_id) is ApprovalState.PENDING
    assert image_exists(moto, image_id)

    # a copy fetched an hour ago (stale: it would be fetched again) is used while Slack fails
    key = f"{prefix}usergroup:{GROUP}"
    redis_srv.client().set(key, json.dumps({"members": ["UGROUPIE"], "fetched_at": time.time() - 3600}))
    slack.fail_next(LOOKUP, "error:fatal_error")
    click(runtime, slack, "ami_approve", approval_id, "UGROUPIE")
    wait_until(lambda: state_of(runtime, approval_id) is ApprovalState.APPROVED, what="approved")
    assert [c.error for c in slack.calls(LOOKUP)] == ["fatal_error"] * 3  # it did try Slack
    wait_until(lambda: not image_exists(moto, image_id), timeout=15, what="the image deregistered")


def test_a_slow_group_lookup_does_not_hold_the_click_past_slacks_3_seconds(
    bot: Any, slack: Any, moto: Any
) -> None:
    slack.set_usergroup(GROUP, ["UGROUPIE"])
    runtime = bot(**{**SETTINGS, "amibot_approvers": GROUP})
    approval_id, _ = request_approval(runtime, slack, new_image(moto))
    slack.fail_next(LOOKUP, "timeout", hold_seconds=4)  # Slack answers, but only after 4 s
    started = time.monotonic()
    click(runtime, slack, "ami_approve", approval_id, "UGROUPIE")
    assert time.monotonic() - started < 3


# --- cancelling ----------------------------------------------------------------------------------


def test_the_requester_cancels_with_the_button_on_the_approval_message(
    bot: Any, slack: Any, moto: Any
) -> None:
    runtime = bot(**SETTINGS)
    image_id = new_image(moto)
    approval_id, message = request_approval(runtime, slack, image_id)
    cancel = [b for b in buttons_in(message.params["blocks"]) if b["action_id"] == "ami_cancel"]
    assert [b["value"] for b in cancel] == [approval_id]

    for someone in ("UAPPROVER", "UOTHER"):  # an approver rejects, they do not cancel
        url = click(runtime, slack, "ami_cancel", approval_id, someone)
        assert "only <@UASKER> (who asked) or an admin can cancel this request" in told(slack, url)
    assert state_of(runtime, approval_id) is ApprovalState.PENDING

    click(runtime, slack, "ami_cancel", approval_id, "UASKER")
    updated = slack.wait_for(lambda s: updates_of(s, message), what="the message updated")
    blocks = updated[0].params["blocks"]
    assert buttons_in(blocks) == []
    assert "🚫 *Cancelled* by <@UASKER> at " in json.dumps(blocks, ensure_ascii=False)
    assert state_of(runtime, approval_id) is ApprovalState.CANCELLED
    late = click(runtime, slack, "ami_approve", approval_id, "UAPPROVER")
    assert "was already cancelled by <@UASKER>" in told(slack, late)
    assert image_exists(moto, image_id)
    assert "approval.cancelled" in [e["action"] for e in runtime.audit.last(20)]


def test_the_requester_cancels_from_ami_status_and_only_they_see_the_button(
    bot: Any, slack: Any, moto: Any
) -> None:
    runtime = bot(**SETTINGS)
    image_id = new_image(moto)
    approval_id, message = request_approval(runtime, slack, image_id)

    mine, _ = command(runtime, slack, "status")
    theirs, _ = command(runtime, slack, "status", user="UOTHER")
    assert approval_id in mine["text"] and approval_id in theirs["text"]
    assert [(b["action_id"], b["value"]) for b in buttons_in(mine["blocks"])] == [("ami_cancel", approval_id)]
    assert buttons_in(theirs["blocks"]) == []

    # a Cancel click by someone else (say, a copied payload) is refused
    url = click(runtime, slack, "ami_cancel", approval_id, "UOTHER", channel="CGENERAL")
    assert "only <@UASKER>" in told(slack, url)
    assert state_of(runtime, approval_id) is ApprovalState.PENDING

    click(runtime, slack, "ami_cancel", approval_id, "UASKER", channel="CGENERAL")
    wait_until(lambda: state_of(runtime, approval_id) is ApprovalState.CANCELLED, what="cancelled")
    updated = slack.wait_for(lambda s: updates_of(s, message), what="the approval message updated")
    assert "Cancelled" in json.dumps(updated[0].params["blocks"])
    after, _ = command(runtime, slack, "status")
    assert approval_id not in after["text"]
    assert image_exists(moto, image_id)


# --- the workspace and channel checks ------------------------------------------------------------


def test_requests_from_another_workspace_are_refused_and_change_nothing(
    bot: Any, slack: Any, moto: Any, redis_srv: Any, prefix: str
) -> None:
    runtime = bot(**SETTINGS, amibot_team_id="T0001")
    image_id = new_image(moto)
    redis = redis_srv.client()

    ack, url = command(runtime, slack, f"deregister {image_id}", team="T9999")
    assert ack == {"response_type": "ephemeral", "text": "⚠️ amibot does not serve this workspace."}
    assert redis.zcard(f"{prefix}work:due") == 0 and redis.xlen(f"{prefix}audit") == 0

    # a real request from the workspace, then a click on it from another workspace: 403, no change
    approval_id, _ = request_approval(runtime, slack, image_id)
    foreign = block_action_body("ami_approve", approval_id, user="UAPPROVER", channel="COPS", team="T9999")
    response = dispatch(runtime, foreign)
    assert response.status == 403 and "does not serve this workspace" in response.body
    assert state_of(runtime, approval_id) is ApprovalState.PENDING
    assert image_exists(moto, image_id)
    assert slack.responses(url) == []
    assert [e["action"] for e in runtime.audit.last(20)] == ["approval.requested", "deregister.requested"]


def test_commands_outside_the_allowed_channels_are_refused(
    bot: Any, slack: Any, moto: Any, redis_srv: Any, prefix: str
) -> None:
    runtime = bot(**SETTINGS, amibot_allowed_channels="CGENERAL,CDEPLOY")
    image_id = new_image(moto)

    ack, _ = command(runtime, slack, f"deregister {image_id}", channel="CRANDOM")
    assert ack["response_type"] == "ephemeral"
    assert ack["text"] == "⚠️ `/ami` is not enabled in this channel. Use it in <#CDEPLOY>, <#CGENERAL>."
    assert redis_srv.client().zcard(f"{prefix}work:due") == 0
    assert runtime.audit.last(10) == []

    # in an allowed channel it works; the approval buttons work in the approval channel (not a
    # command channel): the channel list limits where `/ami` is typed, not where approvers click
    approval_id, _ = request_approval(runtime, slack, image_id)
    click(runtime, slack, "ami_approve", approval_id, "UAPPROVER", channel="COPS")
    wait_until(lambda: not image_exists(moto, image_id), timeout=15, what="the image deregistered")


# --- admin and approver commands -----------------------------------------------------------------


def test_audit_is_for_admins_and_shows_the_newest_entries_first(bot: Any, slack: Any, moto: Any) -> None:
    runtime = bot(**SETTINGS)
    image_id = new_image(moto)
    missing = "ami-0000000000000dead"
    _, url = command(runtime, slack, f"deregister {missing} --reason 'cleanup'")
    assert "not found" in told(slack, url, "the refusal")
    _, url = command(runtime, slack, f"protect {image_id}", user="UAPPROVER")
    assert "is protected" in told(slack, url, "protected")

    for user in ("UASKER", "UAPPROVER"):
        ack, _ = command(runtime, slack, "audit", user=user)
        assert ack["text"] == "⚠️ `/ami audit` is for amibot admins (AMIBOT_ADMINS).", ack

    ack, _ = command(runtime, slack, "audit 10", user="UADMIN")
    lines = ack["text"].splitlines()
    assert lines[0] == "*Last 3 audit entries* (newest first)", lines
    stamp = r"`\d{4}-\d\d-\d\d \d\d:\d\d UTC`"
    assert re.fullmatch(rf"{stamp} <@UAPPROVER> image\.protect `{image_id}` {REGION}", lines[1]), lines[1]
    assert re.fullmatch(
        rf"{stamp} <@UASKER> deregister\.refused `{missing}` → image {missing} not found in {REGION}, "
        rf"or not owned by this account {REGION}",
        lines[2],
    ), lines[2]
    assert re.fullmatch(
        rf"{stamp} <@UASKER> deregister\.requested `{missing}` \(cleanup\) {REGION}", lines[3]
    ), lines[3]
    one, _ = command(runtime, slack, "audit 1", user="UADMIN")
    assert one["text"].splitlines()[1:] == lines[1:2]


def test_protect_and_unprotect_are_for_approvers_and_set_the_tag_deregister_respects(
    bot: Any, slack: Any, moto: Any
) -> None:
    runtime = bot(**SETTINGS)
    image_id = new_image(moto)

    for sub in ("protect", "unprotect"):
        ack, _ = command(runtime, slack, f"{sub} {image_id}")
        assert ack["text"] == (
            f"⚠️ `/ami {sub}` is for approvers and admins (AMIBOT_APPROVERS, AMIBOT_ADMINS)."
        ), ack
    assert tags_of(moto, image_id) == {}

    ack, url = command(runtime, slack, f"protect {image_id}", user="UAPPROVER")
    assert "Protecting" in ack["text"]
    assert "tag `amibot:keep` set" in told(slack, url)
    assert tags_of(moto, image_id) == {"amibot:keep": "UAPPROVER"}

    _, url = command(runtime, slack, f"deregister {image_id}")
    assert "carries the protect tag `amibot:keep`" in told(slack, url, "the refusal")

    _, url = command(runtime, slack, f"unprotect {image_id}", user="UADMIN")
    assert "tag `amibot:keep` removed" in told(slack, url)
    assert tags_of(moto, image_id) == {}
    approval_id, _ = request_approval(runtime, slack, image_id)
    assert state_of(runtime, approval_id) is ApprovalState.PENDING
    actions = [(e["action"], e["actor"]) for e in runtime.audit.last(20) if e["action"].startswith("image.")]
    assert actions == [("image.unprotect", "UADMIN"), ("image.protect", "UAPPROVER")]
