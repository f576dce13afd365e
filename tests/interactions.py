"""Driving an in-process bot the way Slack does: signed requests through the real Bolt app, plus the
payloads of modals (block_suggestion, view_submission), App Home and AWS clients stubbed by botocore."""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import urlencode

from slack_bolt.request import BoltRequest

from bot.aws.clients import AwsClients
from tests.conftest import SIGNING_SECRET
from tests.slack_requests import command_body, signed_headers


def post(runtime: Any, body: str, content_type: str | None = None) -> Any:
    headers = signed_headers(body, SIGNING_SECRET)
    if content_type:
        headers["content-type"] = content_type
    return runtime.bolt.dispatch(BoltRequest(body=body, headers=headers))


def command(
    runtime: Any, slack: Any, text: str, *, user: str = "UASKER", channel: str = "CGENERAL"
) -> tuple[Any, str]:
    """`/ami TEXT` through the handlers; returns (Bolt response, the command's response URL)."""
    url = slack.new_response_url()
    body = command_body(text, user=user, channel=channel, response_url=url, trigger_id=slack.new_trigger_id())
    response = post(runtime, body)
    assert response.status == 200, response.body
    return response, url


def ack_text(response: Any) -> str:
    return str(json.loads(response.body)["text"]) if response.body else ""


def answer_to(slack: Any, url: str, contains: str = "", what: str = "answer") -> str:
    """The text of the first message posted to `url` that contains `contains`."""
    calls = slack.wait_for(
        lambda s: [c for c in s.responses(url) if contains in c.params.get("text", "")], what=what, timeout=10
    )
    return str(calls[0].params["text"])


def payload_body(payload: dict[str, Any]) -> str:
    return urlencode({"payload": json.dumps(payload)})


def with_values(view: dict[str, Any], values: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """A view as Slack sends it back: `values` is {block_id: {action_id: element state}}."""
    return {**view, "state": {"values": values}}


def from_view(kind: str, view: dict[str, Any], user: str, **fields: Any) -> str:
    """A payload Slack sends about a modal (`kind`: block_suggestion, block_actions, view_submission)."""
    return payload_body(
        {
            "type": kind,
            "team": {"id": "T0001", "domain": "example"},
            "user": {"id": user, "team_id": "T0001"},
            "api_app_id": "A0001",
            "token": "legacy-verification-token",
            "view": view,
            **fields,
        }
    )


def suggestion_body(view: dict[str, Any], action_id: str, value: str, *, user: str = "UASKER") -> str:
    container = {"type": "view", "view_id": view.get("id", "V1")}
    return from_view(
        "block_suggestion",
        view,
        user,
        container=container,
        action_id=action_id,
        block_id="instance",
        value=value,
    )


def view_action_body(
    view: dict[str, Any], action_id: str, selected: str, *, block_id: str, user: str = "UASKER"
) -> str:
    """An element of a modal with dispatch_action (here an external select) was changed."""
    action = {
        "type": "external_select",
        "action_id": action_id,
        "block_id": block_id,
        "selected_option": {"text": {"type": "plain_text", "text": selected}, "value": selected},
        "action_ts": "1700000000.000200",
    }
    container = {"type": "view", "view_id": view.get("id", "V1")}
    return from_view("block_actions", view, user, container=container, trigger_id="8.8.8", actions=[action])


def submission_body(view: dict[str, Any], *, user: str = "UASKER") -> str:
    return from_view("view_submission", view, user, trigger_id="9.9.9")


def home_opened_body(user: str, tab: str = "home") -> str:
    return json.dumps(
        {
            "token": "legacy-verification-token",
            "team_id": "T0001",
            "api_app_id": "A0001",
            "event": {"type": "app_home_opened", "user": user, "channel": "D0001", "tab": tab},
            "type": "event_callback",
            "event_id": f"Ev{time.monotonic_ns()}",
            "event_time": int(time.time()),
        }
    )


def home_button_body(action_id: str, *, user: str) -> str:
    return payload_body(
        {
            "type": "block_actions",
            "team": {"id": "T0001", "domain": "example"},
            "user": {"id": user, "team_id": "T0001"},
            "api_app_id": "A0001",
            "token": "legacy-verification-token",
            "container": {"type": "view", "view_id": "VHOME"},
            "trigger_id": "1.2.3",
            "view": {"id": "VHOME", "type": "home", "blocks": []},
            "actions": [
                {
                    "type": "button",
                    "action_id": action_id,
                    "block_id": "home_actions",
                    "value": "refresh",
                    "action_ts": str(time.time()),
                }
            ],
        }
    )


class StubbedAws(AwsClients):
    """AwsClients that hand out given (Stubber-wrapped) clients: moto returns one page, so paging
    and the fields moto lacks are tested against botocore's Stubber."""

    def __init__(self, ec2: Any, autoscaling: Any = None) -> None:
        super().__init__({})
        self._stubbed = {"ec2": ec2, "autoscaling": autoscaling}

    def ec2(self, account: str | None, region: str) -> Any:
        return self._stubbed["ec2"]

    def ec2_quick(self, account: str | None, region: str) -> Any:
        return self._stubbed["ec2"]

    def autoscaling(self, account: str | None, region: str) -> Any:
        return self._stubbed["autoscaling"]
