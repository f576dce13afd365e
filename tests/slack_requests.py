"""Slack requests as Slack sends them: form bodies and JSON payloads, signed with the signing secret."""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import urlencode

from slack_sdk.signature import SignatureVerifier


def signed_headers(body: str, secret: str, *, timestamp: int | None = None) -> dict[str, str]:
    ts = str(int(time.time()) if timestamp is None else timestamp)
    return {
        "content-type": "application/x-www-form-urlencoded",
        "x-slack-request-timestamp": ts,
        "x-slack-signature": SignatureVerifier(secret).generate_signature(timestamp=ts, body=body),
    }


def command_body(
    text: str,
    *,
    user: str = "UASKER",
    channel: str = "CGENERAL",
    team: str = "T0001",
    response_url: str = "https://hooks.slack.com/commands/T0001/1/x",
    trigger_id: str = "1.2.3",
) -> str:
    return urlencode(
        {
            "token": "legacy-verification-token",
            "team_id": team,
            "team_domain": "example",
            "channel_id": channel,
            "channel_name": "general",
            "user_id": user,
            "user_name": user.lower(),
            "command": "/ami",
            "text": text,
            "api_app_id": "A0001",
            "response_url": response_url,
            "trigger_id": trigger_id,
        }
    )


def block_action_body(
    action_id: str,
    value: str,
    *,
    user: str = "UAPPROVER",
    channel: str = "CGENERAL",
    team: str = "T0001",
    message_ts: str = "1700000000.000100",
    response_url: str = "https://hooks.slack.com/actions/T0001/1/x",
) -> str:
    payload: dict[str, Any] = {
        "type": "block_actions",
        "team": {"id": team, "domain": "example"},
        "user": {"id": user, "username": user.lower(), "team_id": team},
        "api_app_id": "A0001",
        "token": "legacy-verification-token",
        "container": {
            "type": "message",
            "message_ts": message_ts,
            "channel_id": channel,
            "is_ephemeral": False,
        },
        "trigger_id": "1.2.3",
        "channel": {"id": channel, "name": "general"},
        "message": {"type": "message", "ts": message_ts, "text": "", "blocks": []},
        "response_url": response_url,
        "actions": [
            {
                "type": "button",
                "action_id": action_id,
                "block_id": "b1",
                "value": value,
                "action_ts": str(time.time()),
            }
        ],
    }
    return urlencode({"payload": json.dumps(payload)})


def event_body(event: dict[str, Any], *, team: str = "T0001") -> str:
    return json.dumps(
        {
            "token": "legacy-verification-token",
            "team_id": team,
            "api_app_id": "A0001",
            "event": event,
            "type": "event_callback",
            "event_id": "Ev0001",
            "event_time": int(time.time()),
        }
    )
