"""Approval messages (pure): the request with its buttons, the same message once decided,
reminders, and the outbox items that post or update them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bot import blocks as bk
from bot.approvals import Approval, ApprovalState
from bot.ids import ActionId, CallbackId
from bot.messages import Delivery, OutboxItem
from bot.notices import when

Summary = Callable[[Approval], tuple[str, list[dict[str, Any]]]]

STATE_LINE = {
    ApprovalState.APPROVED: "✅ *Approved* by <@{who}> at {at}",
    ApprovalState.REJECTED: "❌ *Rejected* by <@{who}> at {at}",
    ApprovalState.CANCELLED: "🚫 *Cancelled* by <@{who}> at {at}",
    ApprovalState.EXPIRED: "⌛ *Expired* at {at}: nobody decided in time; nothing was done",
}


def deregister_summary(approval: Approval) -> tuple[str, list[dict[str, Any]]]:
    s = approval.subject
    account = f" · account {approval.account}" if approval.account else ""
    text = (
        f"<@{approval.requester}> asks to deregister `{s['image_id']}` ({s.get('name') or 'no name'}) "
        f"in {approval.region}{account}"
    )
    snapshots = s.get("snapshots", [])
    size = sum(int(x.get("size_gib", 0)) for x in snapshots)
    fate = "kept (--keep-snapshots)" if s.get("keep_snapshots") else "deleted unless another AMI uses them"
    facts = [
        ("AMI", f"`{s['image_id']}`"),
        ("Created", str(s.get("creation_date", "?"))[:16].replace("T", " ")),
        ("Snapshots", f"{len(snapshots)} ({size} GiB), {fate}"),
        ("Reason", approval.reason or "—"),
    ]
    if s.get("deprecation_time"):
        facts.append(("Deprecated", str(s["deprecation_time"])[:16].replace("T", " ")))
    return text, [bk.section(f"🗑️ {text}"), bk.fields(*facts)]


def request_message(approval: Approval, summary: Summary) -> tuple[str, list[dict[str, Any]]]:
    text, body = summary(approval)
    confirm = bk.confirm_dialog(
        "Approve?",
        f"{text}. This cannot be undone.",
        "Approve",
        danger=True,
    )
    buttons = bk.actions(
        bk.button("Approve", ActionId.APPROVE, approval.id, style="primary", confirm=confirm),
        bk.button("Reject", ActionId.REJECT, approval.id, style="danger"),
        bk.button("Cancel request", ActionId.CANCEL, approval.id),
        block_id=f"approval:{approval.id}",
    )
    context = bk.context(
        f"approval {approval.id} · expires {when(approval.expires_at)} · "
        f"an approver other than <@{approval.requester}> must approve"
    )
    return f"Approval needed: {text}", [*body, buttons, context]


def decided_message(approval: Approval, summary: Summary) -> tuple[str, list[dict[str, Any]]]:
    text, body = summary(approval)
    line = STATE_LINE.get(approval.state, str(approval.state)).format(
        who=approval.decided_by or "?", at=when(approval.decided_at or approval.expires_at)
    )
    if approval.decision_note:
        line += f": {approval.decision_note}"
    if approval.job_id:
        line += f" — job `{approval.job_id}`"
    return f"{text} — {approval.state}", [*body, bk.section(line), bk.context(f"approval {approval.id}")]


def post_request(approval: Approval, channel: str, summary: Summary) -> OutboxItem:
    text, blocks = request_message(approval, summary)
    return OutboxItem(
        id=f"approval:{approval.id}:request",
        kind=Delivery.POST,
        text=text,
        blocks=blocks,
        channel=channel,
        on_sent=f"approval:{approval.id}",
        # the approval channel may be closed to the bot: ask where the request was made instead
        fallback_channel=approval.channel if approval.channel != channel else None,
    )


def update_decided(approval: Approval, summary: Summary) -> OutboxItem | None:
    """chat.update of the stored message (None until the request message has landed)."""
    if not (approval.message_channel and approval.message_ts):
        return None
    text, blocks = decided_message(approval, summary)
    return OutboxItem(
        id=f"approval:{approval.id}:decided:{approval.state}",
        kind=Delivery.UPDATE,
        text=text,
        blocks=blocks,
        channel=approval.message_channel,
        ts=approval.message_ts,
    )


def in_thread(approval: Approval, text: str, key: str) -> OutboxItem | None:
    if not (approval.message_channel and approval.message_ts):
        return None
    return OutboxItem(
        id=f"approval:{approval.id}:{key}",
        kind=Delivery.POST,
        text=text,
        channel=approval.message_channel,
        thread_ts=approval.message_ts,
    )


def reminder(approval: Approval, mentions: str) -> OutboxItem | None:
    text = (
        f"⏰ Reminder: approval {approval.id} is still waiting for a decision "
        f"(expires {when(approval.expires_at)}). {mentions}".strip()
    )
    return in_thread(approval, text, f"reminder:{approval.reminders + 1}")


def to_requester(approval: Approval, text: str, key: str) -> OutboxItem:
    """A notice to the requester in the asking channel (a DM if the bot may not post there)."""
    return OutboxItem(
        id=f"approval:{approval.id}:{key}@{approval.channel}",
        kind=Delivery.POST,
        text=text,
        channel=approval.channel,
        fallback_user=approval.requester,
    )


REASON_BLOCK = "reason"


def reject_modal(approval: Approval) -> dict[str, Any]:
    """The modal that asks for an optional rejection reason."""
    text, _ = deregister_summary(approval) if approval.kind == "deregister" else (approval.id, [])
    return {
        "type": "modal",
        "callback_id": CallbackId.REJECT_MODAL,
        "private_metadata": approval.id,
        "title": {"type": "plain_text", "text": "Reject request"},
        "submit": {"type": "plain_text", "text": "Reject"},
        "close": {"type": "plain_text", "text": "Back"},
        "blocks": [
            bk.section(f"Reject approval `{approval.id}`?\n{text}"),
            {
                "type": "input",
                "block_id": REASON_BLOCK,
                "optional": True,
                "label": {"type": "plain_text", "text": "Reason (optional)"},
                "element": {
                    "type": "plain_text_input",
                    "action_id": REASON_BLOCK,
                    "multiline": True,
                    "max_length": 500,
                },
            },
        ],
    }
