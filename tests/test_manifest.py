"""manifest.yml declares exactly what the app handles: commands, actions, events, scopes."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import fakeredis
import pytest
import yaml
from slack_bolt.request import BoltRequest

from bot.app import build
from bot.config import load_settings
from bot.ids import COMMAND, ActionId, CallbackId, Event
from tests.slack_requests import block_action_body, command_body, event_body, signed_headers

ROOT = Path(__file__).resolve().parent.parent
SECRET = "manifest-secret"

# Web API method -> the bot scope it needs (https://api.slack.com/methods)
SCOPES = {
    "chat.postMessage": "chat:write",
    "chat.update": "chat:write",
    "chat.postEphemeral": "chat:write",
    "conversations.open": "im:write",
    "conversations.history": "channels:history",
    "conversations.replies": "channels:history",  # a thread of the same channels
    "usergroups.users.list": "usergroups:read",
    "users.info": "users:read",
    "views.open": None,
    "views.update": None,
    "views.push": None,
    "views.publish": None,
    "auth.test": None,
}


@pytest.fixture(scope="module")
def manifest() -> dict[str, Any]:
    return dict(yaml.safe_load((ROOT / "manifest.yml").read_text()))


@pytest.fixture(scope="module")
def app(slack_srv: Any) -> Any:
    settings = load_settings(
        {
            "slack_bot_token": slack_srv.token,
            "slack_signing_secret": SECRET,
            "slack_api_url": slack_srv.api_url,
            "amibot_regions": "us-east-1",
        },
        env_file=None,
    )
    return build(settings, redis_client=fakeredis.FakeRedis(decode_responses=True)).bolt


def dispatch(app: Any, body: str, content_type: str = "application/x-www-form-urlencoded") -> int:
    headers = signed_headers(body, SECRET)
    headers["content-type"] = content_type
    return int(app.dispatch(BoltRequest(body=body, headers=headers)).status)


def test_the_slash_command_is_declared_and_handled(manifest: dict[str, Any], app: Any) -> None:
    declared = [c["command"] for c in manifest["features"]["slash_commands"]]
    assert declared == [COMMAND]
    assert dispatch(app, command_body("help")) == 200


def test_every_action_id_is_handled(app: Any) -> None:
    for action_id in ActionId:
        assert dispatch(app, block_action_body(action_id, "x-000000")) != 404, action_id


def test_an_unknown_action_id_is_not_handled(app: Any) -> None:
    assert dispatch(app, block_action_body("not_an_amibot_action", "x")) == 404


def test_events_declared_match_events_handled(manifest: dict[str, Any], app: Any) -> None:
    declared = set(manifest["settings"].get("event_subscriptions", {}).get("bot_events", []))
    assert declared == {str(e) for e in Event}
    for event in Event:
        body = event_body({"type": str(event), "user": "UASKER", "tab": "home", "channel": "D1"})
        assert dispatch(app, body, "application/json") == 200, event


def test_interactivity_and_socket_mode(manifest: dict[str, Any]) -> None:
    settings = manifest["settings"]
    assert settings["socket_mode_enabled"] is True
    uses_interactivity = len(ActionId) + len(CallbackId) > 0
    assert settings["interactivity"]["is_enabled"] is uses_interactivity or uses_interactivity is False
    assert manifest["features"]["app_home"]["home_tab_enabled"] is (
        "app_home_opened" in {str(e) for e in Event}
    )


def test_every_web_api_method_the_code_calls_has_its_scope(manifest: dict[str, Any]) -> None:
    scopes = set(manifest["oauth_config"]["scopes"]["bot"])
    assert "commands" in scopes
    called: set[str] = set()
    for path in [*ROOT.glob("bot/**/*.py"), *ROOT.glob("handlers/**/*.py")]:
        if path.name == "fakeslack.py" or "demo" in path.parts:
            continue
        source = path.read_text()
        called |= set(
            re.findall(r'"((?:chat|conversations|views|usergroups|users|auth)\.[a-zA-Z]+)"', source)
        )
        for head, tail in re.findall(r"\.(chat|conversations|views|usergroups|users)_([a-zA-Z_]+)\(", source):
            called.add(head + "." + tail.replace("_", "."))  # slack_sdk: usergroups_users_list(…)
    unknown = called - set(SCOPES)
    assert not unknown, f"add these methods to SCOPES in this test: {unknown}"
    needed = {SCOPES[m] for m in called} - {None}
    assert needed <= scopes, f"manifest.yml lacks scopes {needed - scopes}"
    declared_but_unused = scopes - needed - {"commands", "groups:history", "im:history", "mpim:history"}
    assert not declared_but_unused, (
        f"manifest.yml declares scopes the code does not use: {declared_but_unused}"
    )
