"""Checks of a signed HTTP request's shape before Bolt sees it (pure).

Bolt indexes into payloads without checking them (a `view` that is a string, `actions` that
are numbers…) and turns the resulting exception into a 500. A request from Slack always has
the shape checked here, so anything else is answered 400 and reaches no listener.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs

TIMESTAMP = re.compile(r"^[0-9]{1,12}$")
SIGNATURE = re.compile(r"^v0=[0-9a-f]{64}$")

# objects an interaction payload may carry; when present they must be JSON objects
OBJECT_FIELDS = ("team", "user", "channel", "container", "message", "view", "enterprise", "state")
REQUIRED_STRINGS: Mapping[str, tuple[tuple[str, ...], ...]] = {
    "block_actions": (("user", "id"),),
    "view_submission": (("user", "id"), ("view", "type"), ("view", "callback_id")),
    "view_closed": (("user", "id"), ("view", "type"), ("view", "callback_id")),
    "block_suggestion": (("user", "id"), ("action_id",), ("value",)),
}


def header_problem(timestamp: str | None, signature: str | None) -> str | None:
    """Signature headers that cannot even be checked (the verifier would raise on them)."""
    if not timestamp or not TIMESTAMP.match(timestamp):
        return "missing or malformed X-Slack-Request-Timestamp"
    if not signature or not SIGNATURE.match(signature):
        return "missing or malformed X-Slack-Signature"
    return None


def body_problem(body: str, content_type: str) -> str | None:
    """Why this (already signature-checked) body is not a Slack request amibot can take, or None."""
    if content_type.startswith("application/json"):
        data = _json(body)
        if not isinstance(data, dict) or not isinstance(data.get("type"), str):
            return "expected a JSON object with a type"
        if data["type"] == "event_callback":
            event = data.get("event")
            if not isinstance(event, dict) or not isinstance(event.get("type"), str):
                return "event_callback without an event object"
        return None
    form = parse_qs(body, keep_blank_values=True)
    if "payload" in form:
        return _interaction_problem(_json(form["payload"][0]))
    if "command" in form:
        for name in ("user_id", "channel_id"):
            if not (form.get(name) or [""])[0].strip():
                return f"slash command without {name}"
    return None


def _interaction_problem(payload: Any) -> str | None:
    if not isinstance(payload, dict) or not isinstance(payload.get("type"), str):
        return "payload is not a JSON object with a type"
    for name in OBJECT_FIELDS:
        if payload.get(name) is not None and not isinstance(payload[name], dict):
            return f"payload field {name} is not an object"
    kind = payload["type"]
    if kind == "block_actions":
        actions = payload.get("actions")
        if not isinstance(actions, list) or not actions:
            return "block_actions without actions"
        for action in actions:
            if not isinstance(action, dict) or not isinstance(action.get("action_id"), str):
                return "an action without an action_id"
            if action.get("value") is not None and not isinstance(action["value"], str):
                return "an action value that is not a string"
    for path in REQUIRED_STRINGS.get(kind, ()):
        value: Any = payload
        for step in path:
            value = value.get(step) if isinstance(value, dict) else None
        if not isinstance(value, str):
            return f"{kind} without {'.'.join(path)}"
    return None


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None
