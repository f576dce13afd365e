"""Socket Mode end to end: the real `amibot run` with SLACK_APP_TOKEN (no HTTP server, no signing
secret) against the fake Slack, which hands out the WebSocket URL (`apps.connections.open`) and
serves the WebSocket; envelopes are pushed as Slack pushes them and the bot's acks read back.

The bot uses slack_bolt's `SocketModeHandler`, i.e. slack_sdk's built-in Socket Mode client,
unchanged: it connects to whatever URL `apps.connections.open` answers on SLACK_API_URL.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import pytest

from bot.fakeslack import APP_TOKEN
from bot.fakesocketmode import SocketConnection
from tests.conftest import set_image_state
from tests.e2e.harness import (
    ASKER,
    JOB_ID,
    BotProcess,
    block_actions_body,
    images_of_job,
    notices_for,
    slash_command_body,
)
from tests.peers import free_port, wait_until

pytestmark = pytest.mark.e2e

REGION = "us-east-1"
CONNECT_S = 30.0  # a cold start of the bot process (imports, auth.test, Redis) on a slow machine


# --- what Slack puts in the envelopes -----------------------------------------------------------


def command_payload(text: str, response_url: str) -> dict[str, Any]:
    """A slash command envelope's payload: the fields of the HTTP form, as a JSON object."""
    return dict(parse_qsl(slash_command_body(text, response_url).decode(), keep_blank_values=True))


def home_opened_payload(user: str) -> dict[str, Any]:
    """An `events_api` envelope's payload: the event callback HTTP mode would get."""
    now = int(time.time())
    return {
        "token": "legacy-verification-token",
        "team_id": ASKER.team,
        "api_app_id": "A0FAKESLACK",
        "event": {
            "type": "app_home_opened",
            "user": user,
            "channel": "D" + user[1:],
            "tab": "home",
            "event_ts": f"{now}.000100",
        },
        "type": "event_callback",
        "event_id": f"Ev{now}",
        "event_time": now,
        "authorizations": [{"enterprise_id": None, "team_id": ASKER.team, "user_id": "UBOT", "is_bot": True}],
        "is_ext_shared_channel": False,
    }


def home_refresh_payload(view: dict[str, Any]) -> dict[str, Any]:
    """An `interactive` envelope's payload: a click on the home tab's Refresh button."""
    payload = json.loads(
        dict(parse_qsl(block_actions_body("ami_home_refresh", "refresh", "").decode()))["payload"]
    )
    for key in ("channel", "message", "response_url"):  # a view's click has none of these
        payload.pop(key)
    payload["container"] = {"type": "view", "view_id": view["id"]}
    payload["view"] = view
    payload["actions"][0]["block_id"] = "home_actions"
    return payload


# --- the bot in Socket Mode ----------------------------------------------------------------------


@pytest.fixture
def socket_bot(start_bot: Callable[..., BotProcess]) -> Callable[..., BotProcess]:
    """Launch `amibot run` in Socket Mode (stopped after the test like every `start_bot` bot)."""

    def launch(**env: str) -> BotProcess:
        bot = start_bot(start=False, SLACK_APP_TOKEN=APP_TOKEN, **env)
        bot.http = False
        bot.env.pop("SLACK_SIGNING_SECRET")  # Socket Mode needs none
        bot.launch()
        return bot

    return launch


def connection_of(bot: BotProcess, slack: Any, after: SocketConnection | None = None) -> SocketConnection:
    """The bot's WebSocket, once it is open (failing early, with the log, if the bot exits)."""
    deadline = time.monotonic() + CONNECT_S
    while time.monotonic() < deadline:
        assert bot.running, f"{bot.name} exited while connecting:\n{bot.log_tail()}"
        try:
            return slack.socket_mode.wait_connection(0.2, after=after)
        except AssertionError:
            continue
    raise AssertionError(f"{bot.name} did not connect in {CONNECT_S}s:\n{bot.log_tail()}")


def ack_text(payload: dict[str, Any] | None) -> str:
    """The text of an ephemeral reply carried by an ack (asserting that it is one)."""
    assert payload is not None, "the ack carried no response payload"
    assert payload.get("response_type") == "ephemeral", payload
    assert isinstance(payload.get("text"), str) and payload["text"].strip(), payload
    return str(payload["text"])


# --- the tests ----------------------------------------------------------------------------------


def test_commands_over_socket_mode_ack_with_the_reply_and_notices_follow(
    socket_bot: Callable[..., BotProcess], slack: Any, pending_images: Any, instance: str
) -> None:
    bot = socket_bot(AMIBOT_NOTIFY_CHANNEL="COPS")
    connection = connection_of(bot, slack)
    opened = slack.calls("apps.connections.open")
    assert len(opened) == 1 and opened[0].ok, opened
    assert opened[0].headers.get("Authorization") == "(redacted)"  # the token went in the header

    help_ack = slack.socket_mode.push("slash_commands", command_payload("help", slack.new_response_url()))
    assert "/ami create INSTANCE_ID" in ack_text(help_ack.payload)

    url = slack.new_response_url()
    create = slack.socket_mode.send("slash_commands", command_payload(f"create {instance} --name sm-1", url))
    assert create.message["accepts_response_payload"] is True
    text = ack_text(create.wait_ack().payload)
    match = JOB_ID.search(text)
    assert match and instance in text, text
    job_id = match.group(0)

    images = wait_until(lambda: images_of_job(pending_images, job_id), timeout=15, what="the image")
    image_id = images[0]["ImageId"]
    started = slack.wait_for(lambda s: [c for c in s.responses(url) if c.ok], what="'started' response")
    assert image_id in started[0].params["text"]
    assert slack.posts() == []  # pending: no notice yet

    set_image_state(pending_images, REGION, image_id, "available")
    slack.wait_for(lambda s: len(s.posts()) >= 2, timeout=15, what="the notices")
    for channel in ("CGENERAL", "COPS"):
        (notice,) = notices_for(slack, image_id, channel)
        assert "available" in notice.params["text"] and job_id in notice.params["text"]

    status = slack.socket_mode.push("slash_commands", command_payload(f"status {job_id}", url))
    assert "succeeded" in ack_text(status.payload)
    assert all(e.ack is not None for e in slack.socket_mode.envelopes())

    assert bot.stop() == 0  # SIGTERM: a clean exit
    assert connection.wait_closed(5), "the bot did not close its WebSocket"
    assert "amibot stopped" in bot.log_text()
    assert "Traceback" not in bot.log_text()


def test_events_and_clicks_arrive_over_socket_mode(
    socket_bot: Callable[..., BotProcess], slack: Any, moto: Any
) -> None:
    bot = socket_bot()
    connection_of(bot, slack)

    opened = slack.socket_mode.push("events_api", home_opened_payload(ASKER.user))
    assert opened.payload is None  # an event is acked with the envelope id alone
    view = slack.wait_for(lambda s: s.home_view(ASKER.user), what="the home tab published")
    labels = [
        e["text"]["text"] for b in view["blocks"] if b["type"] == "actions" for e in b.get("elements", [])
    ]
    assert labels == ["Refresh"], labels

    clicked = slack.socket_mode.push("interactive", home_refresh_payload(view))
    assert clicked.payload is None
    slack.wait_for(lambda s: len(s.calls("views.publish")) >= 2, what="the home tab published again")
    assert all(c.ok for c in slack.calls("views.publish"))
    assert bot.stop() == 0


@pytest.mark.parametrize("how", ["disconnect message", "connection closed"])
def test_the_bot_reconnects_when_slack_asks_or_goes_away(
    how: str, socket_bot: Callable[..., BotProcess], slack: Any, moto: Any
) -> None:
    bot = socket_bot()
    first = connection_of(bot, slack)
    if how == "disconnect message":
        assert slack.socket_mode.request_reconnect() == 1
    else:  # slack_sdk's client reconnects on its next check, up to ping_interval (10 s) later
        first.close(1001, "going away")
    second = connection_of(bot, slack, after=first)
    assert first.wait_closed(10)
    assert len(slack.calls("apps.connections.open")) == 2  # a fresh URL: tickets are single-use
    assert first.ticket != second.ticket

    ack = slack.socket_mode.push("slash_commands", command_payload("help", slack.new_response_url()))
    assert ack.envelope_id and "/ami create INSTANCE_ID" in ack_text(ack.payload)
    assert bot.stop() == 0


UNREACHABLE = "http://127.0.0.1:{port}/api/"  # a free port: nothing listens there


@pytest.mark.parametrize(
    ("env", "line"),
    [
        (
            {"SLACK_APP_TOKEN": "xapp-1-A0FAKESLACK-1-revoked"},
            "amibot: Socket Mode cannot connect (invalid_auth); check SLACK_APP_TOKEN",
        ),
        (
            {"SLACK_APP_TOKEN": "xoxb-not-an-app-token"},
            "amibot: configuration: SLACK_APP_TOKEN=(secret):"
            " expected an app-level token starting with xapp-",
        ),
        (
            {"SLACK_APP_TOKEN": APP_TOKEN, "SLACK_API_URL": UNREACHABLE},
            "amibot: Slack refused the bot token or could not be reached:"
            " URLError: [Errno 111] Connection refused",
        ),
    ],
    ids=["wrong app token", "not an app token", "Slack unreachable"],
)
def test_a_bad_app_token_or_no_slack_exits_2_with_one_clear_line(
    env: dict[str, str], line: str, env_for: Callable[..., dict[str, str]], workdir: Path, slack: Any
) -> None:
    overrides = {k: v.format(port=free_port()) for k, v in env.items()}
    bot_env = env_for(**overrides)
    bot_env.pop("SLACK_SIGNING_SECRET")
    done = subprocess.run(
        [sys.executable, "-m", "bot", "run"],
        cwd=workdir,
        env=bot_env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert line in done.stderr.splitlines(), done.stderr
    assert "Traceback" not in done.stderr
    assert overrides["SLACK_APP_TOKEN"] not in done.stdout + done.stderr
    assert slack.socket_mode.connections() == []
