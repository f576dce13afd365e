"""Block Kit builders: small pure functions returning the dicts Slack expects."""

from __future__ import annotations

from typing import Any

Block = dict[str, Any]

TEXT_LIMIT = 3000  # a section's text


def _clip(text: str, limit: int = TEXT_LIMIT) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def section(text: str, *, accessory: Block | None = None) -> Block:
    block: Block = {"type": "section", "text": {"type": "mrkdwn", "text": _clip(text)}}
    if accessory is not None:
        block["accessory"] = accessory
    return block


def fields(*pairs: tuple[str, str]) -> Block:
    return {
        "type": "section",
        "fields": [{"type": "mrkdwn", "text": _clip(f"*{k}*\n{v}", 2000)} for k, v in pairs[:10]],
    }


def context(*texts: str) -> Block:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": _clip(t, 2000)} for t in texts[:10]]}


def header(text: str) -> Block:
    return {"type": "header", "text": {"type": "plain_text", "text": _clip(text, 150)}}


def divider() -> Block:
    return {"type": "divider"}


def button(
    text: str,
    action_id: str,
    value: str,
    *,
    style: str | None = None,
    confirm: Block | None = None,
) -> Block:
    element: Block = {
        "type": "button",
        "text": {"type": "plain_text", "text": _clip(text, 75)},
        "action_id": action_id,
        "value": value,
    }
    if style:
        element["style"] = style
    if confirm:
        element["confirm"] = confirm
    return element


def confirm_dialog(title: str, text: str, yes: str, no: str = "Cancel", *, danger: bool = False) -> Block:
    dialog: Block = {
        "title": {"type": "plain_text", "text": _clip(title, 100)},
        "text": {"type": "mrkdwn", "text": _clip(text, 300)},
        "confirm": {"type": "plain_text", "text": _clip(yes, 30)},
        "deny": {"type": "plain_text", "text": _clip(no, 30)},
    }
    if danger:
        dialog["style"] = "danger"
    return dialog


def actions(*elements: Block, block_id: str | None = None) -> Block:
    block: Block = {"type": "actions", "elements": list(elements)}
    if block_id:
        block["block_id"] = block_id
    return block


def code(text: str) -> str:
    return "```" + text.replace("```", "'''") + "```"
