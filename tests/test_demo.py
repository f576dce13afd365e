"""`amibot demo`: the real bot against emulated Slack, AWS and Redis, driven by lines of text."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.demo import render
from bot.demo.main import Demo, run_demo
from bot.demo.slack import Console

ROOT = Path(__file__).resolve().parent.parent

# What a user's shell might hold; the demo must ignore all of it.
HOSTILE_ENV = {
    "AMIBOT_REGIONS": "mars-1",
    "AMIBOT_POLL_INTERVAL": "not-a-number",
    "AMIBOT_CONFIG": "/nonexistent/amibot.yaml",
    "AMIBOT_ALLOWED_CHANNELS": "CNOWHERE",
    "SLACK_API_URL": "http://127.0.0.1:9/api/",
    "SLACK_BOT_TOKEN": "xoxb-real-looking",
    "REDIS_URL": "redis://127.0.0.1:9/0",
    "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
    "AWS_PROFILE": "no-such-profile",
}


def amibot(*args: str, stdin: str | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **HOSTILE_ENV, "PYTHONUNBUFFERED": "1"}
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        input=stdin if stdin is not None else "",
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        env=env,
    )


def test_the_example_script_runs_the_real_bot_to_the_available_notice(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in HOSTILE_ENV.items():
        monkeypatch.setenv(name, value)
    out = io.StringIO()
    assert run_demo("example", stdout=out, available_after=1) == 0, out.getvalue()
    text = out.getvalue()
    assert "creating an image of" in text
    assert "[#amibot] amibot:" in text and "is available in us-east-1" in text  # the notify channel
    assert "[#general] amibot:" in text  # and where it was asked
    assert "only visible to you" in text
    assert "✓ create.txt: all" in text and "steps passed" in text
    assert os.environ["AMIBOT_REGIONS"] == "mars-1"  # the user's environment is back as it was
    assert os.environ["AWS_ENDPOINT_URL"] == HOSTILE_ENV["AWS_ENDPOINT_URL"]


def test_the_deregister_script_clicks_real_approval_buttons() -> None:
    out = io.StringIO()
    assert run_demo("deregister", stdout=out, available_after=0.5) == 0, out.getvalue()
    text = out.getvalue()
    assert "[1 Approve] [2 Reject]" in text
    assert "(edited its message)" in text and "Approved* by @bob" in text


def test_the_tour_script_lists_describes_copies_prunes_and_shows_the_home_tab() -> None:
    out = io.StringIO()
    assert run_demo("tour", stdout=out, available_after=0.5) == 0, out.getvalue()
    text = out.getvalue()
    assert "AMIs* in us-east-1" in text and "Where it is used" in text  # list, describe
    assert "is available in eu-west-1" in text  # the copy's notice
    assert "Prune plan (dry run, nothing will be deleted)" in text
    assert "[App Home of alice]" in text and "Your recent completions" in text
    assert "[1 Refresh]" in text and "[2 Refresh]" in text  # the click published the tab again
    assert "✓ tour.txt: all" in text


def test_the_prune_script_keeps_one_image_then_prunes_the_rest_after_approval() -> None:
    out = io.StringIO()
    assert run_demo("prune", stdout=out, available_after=0.5) == 0, out.getvalue()
    text = out.getvalue()
    _, _, rest = text.partition("would deregister these 3 AMIs")
    assert rest and "[1 Keep]" in rest and "[3 Keep]" in rest  # the schedule's notice, at start
    assert "is protected: tag `amibot:keep` set" in rest
    assert "Prune plan (dry run, nothing will be deleted)" in rest
    assert "Approved* by @bob" in rest and "2 AMIs deregistered" in rest
    assert "✓ prune.txt: all" in text


def test_the_prune_schedule_is_off_unless_asked_for() -> None:
    done = amibot("demo", stdin="/ami prune schedule\n")
    assert done.returncode == 0, done.stderr
    assert "Scheduled prune is *off*" in done.stdout, done.stdout
    assert "would deregister these" not in done.stdout
    asked = amibot("demo", "--prune-schedule", "0 3 * * *", stdin="/ami prune schedule\nwait 5\n")
    assert asked.returncode == 0, asked.stderr
    assert "`0 3 * * *` (UTC)" in asked.stdout and "would deregister these" in asked.stdout
    bad = amibot("demo", "--prune-schedule", "every day")
    assert bad.returncode == 2 and "expected a 5-field cron string" in bad.stderr, bad.stderr


def test_home_sends_a_signed_app_home_opened_event_and_shows_the_published_view(
    demo: tuple[Any, io.StringIO],
) -> None:
    session, out = demo
    events: list[dict[str, Any]] = []

    @session.runtime.bolt.middleware
    def record(body: dict[str, Any], next: Any) -> Any:
        if body.get("type") == "event_callback":
            events.append(body)
        return next()

    assert session.run("as bob").problem is None
    step = session.run("home")
    assert step.problem is None, out.getvalue()
    (event,) = events
    assert event["event"]["type"] == "app_home_opened" and event["event"]["user"] == "UBOB"
    assert event["event"]["tab"] == "home" and "view" not in event["event"]  # nothing published yet
    published = session.fake.home_view("UBOB")
    assert published is not None and published["type"] == "home"
    assert session.run("expect [App Home of bob]").problem is None, out.getvalue()
    assert session.run("expect Pending approvals").problem is None
    assert session.run("click Refresh").problem is None, out.getvalue()
    assert len(session.fake.calls("views.publish")) == 2
    assert session.run("home").problem is None
    assert events[-1]["event"]["view"]["id"] == published["id"]  # Slack sends the current view


def test_piped_input_is_a_session_that_ends_cleanly_at_eof() -> None:
    done = amibot("demo", stdin="create ${web-1} --name piped\nas bob\nin ops\n/ami status\nclick 99\n")
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "web-1" in out and "i-" in out  # the instances table at the start
    assert "alice@#general> create ${web-1} --name piped" in out
    assert "creating an image of `i-" in out
    assert "bob@#ops> /ami status" in out and "In-flight jobs" in out
    assert "there is no button [99]" in out
    assert "Traceback" not in done.stderr


def script(tmp_path: Path, text: str) -> str:
    path = tmp_path / "steps.txt"
    path.write_text(text, encoding="utf-8")
    return str(path)


@pytest.mark.parametrize(
    ("lines", "failing"),
    [
        ("/ami help\nexpect no such words anywhere\n", "line 2: expect no such words anywhere"),
        ("/ami create i-nope\n/ami status\n", "line 1: /ami create i-nope"),
        ("/ami create i-nope\nexpect-error something else\n", "line 2: expect-error something else"),
        ("in #nowhere\n", "line 1: in #nowhere"),
        ("/ami status ${no-such-instance}\n", "line 1: /ami status ${no-such-instance}"),
    ],
)
def test_a_failing_step_ends_the_script_with_exit_1_naming_the_line(
    tmp_path: Path, lines: str, failing: str
) -> None:
    out = io.StringIO()
    code = run_demo(script(tmp_path, lines + "/ami help create\n"), stdout=out, expect_timeout=0.5)
    assert code == 1, out.getvalue()
    assert f"failed at {failing}" in out.getvalue()
    assert "> /ami help create" not in out.getvalue()  # the run stopped at the failure


def test_a_refused_command_followed_by_expect_error_passes(tmp_path: Path) -> None:
    out = io.StringIO()
    lines = "/ami create ${web-1} --region mars-1\nexpect Usage\nexpect-error mars-1\n"
    assert run_demo(script(tmp_path, lines), stdout=out, expect_timeout=1) == 0, out.getvalue()
    assert "✓ refused with “mars-1”" in out.getvalue()


def test_a_missing_script_is_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_demo("/nonexistent/script.txt") == 2
    assert "cannot read the script" in capsys.readouterr().err


@pytest.fixture
def demo() -> Iterator[tuple[Any, io.StringIO]]:
    out = io.StringIO()
    world = Demo(Console(out), available_after=0.5, expect_timeout=5)
    session = world.start()
    try:
        yield session, out
    finally:
        world.stop()


def test_click_sends_slacks_block_actions_payload_through_bolt(demo: tuple[Any, io.StringIO]) -> None:
    session, out = demo
    clicks: list[dict[str, Any]] = []
    clicked = threading.Event()

    @session.runtime.bolt.action("demo_test_yes")
    def approve(ack: Any, body: dict[str, Any], respond: Any) -> None:
        ack()
        clicks.append(body)
        respond(replace_original=True, text=f"approved by <@{body['user']['id']}>")
        clicked.set()

    blocks = [
        {"type": "section", "text": {"type": "mrkdwn", "text": "Deregister `ami-0123456789abcdef0`?"}},
        {
            "type": "actions",
            "elements": [
                {
                    "type": "button",
                    "action_id": "demo_test_yes",
                    "value": "a-19bd02",
                    "text": {"type": "plain_text", "text": "Approve"},
                    "confirm": {
                        "title": {"type": "plain_text", "text": "Deregister?"},
                        "text": {"type": "mrkdwn", "text": "This cannot be undone."},
                        "confirm": {"type": "plain_text", "text": "Deregister"},
                        "deny": {"type": "plain_text", "text": "Cancel"},
                    },
                },
                {
                    "type": "button",
                    "action_id": "demo_test_no",
                    "value": "a-19bd02",
                    "text": {"type": "plain_text", "text": "Reject"},
                },
            ],
        },
    ]
    posted = session.runtime.bolt.client.chat_postMessage(channel="CAMIBOT", text="approval", blocks=blocks)
    assert session.run("expect [1 Approve] [2 Reject]").problem is None, out.getvalue()

    assert session.run("as bob").problem is None
    step = session.run("click 1")
    assert step.problem is None, out.getvalue()
    assert clicked.wait(5)
    body = clicks[0]
    assert body["type"] == "block_actions"
    assert body["user"]["id"] == "UBOB"
    assert body["actions"][0]["action_id"] == "demo_test_yes" and body["actions"][0]["value"] == "a-19bd02"
    assert body["container"]["channel_id"] == "CAMIBOT"
    assert body["container"]["message_ts"] == posted["ts"] == body["message"]["ts"]
    assert "confirm: “Deregister?”" in out.getvalue()
    assert session.run("expect (edited its message): approved by @bob").problem is None, out.getvalue()

    # the buttons are gone from the message now; a stale click still reaches the bot (and no
    # listener takes demo_test_no in this test, which the demo reports)
    step = session.run("click 2")
    assert "no longer shown" in out.getvalue()
    assert step.problem is not None and "HTTP 404" in step.problem


def test_a_new_image_is_pending_until_available_after(demo: tuple[Any, io.StringIO]) -> None:
    session, out = demo
    assert session.run("set available-after 60").problem is None
    assert session.run("create ${web-1} --name pending-check").problem is None
    assert session.run("expect CreateImage started").problem is None, out.getvalue()
    assert session.run("images us-east-1").problem is None
    row = [line for line in out.getvalue().splitlines() if "pending-check" in line and "ami-" in line][-1]
    assert " pending " in row, row


def test_render_is_compact_and_names_people_and_channels() -> None:
    numbers: list[str] = []

    def number(block_id: str, element: Any) -> int:
        numbers.append(element["value"])
        return len(numbers)

    names = {"UALICE": "alice", "COPS": "ops"}.__getitem__
    lines = render.message_lines(
        "fallback",
        [
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": "hi <@UALICE> in <#COPS> &amp; <https://x.y|docs>"},
            },
            {"type": "section", "fields": [{"type": "mrkdwn", "text": "*AMI*\n`ami-1`"}]},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": "job j-123456"}]},
            {
                "type": "actions",
                "elements": [
                    {
                        "type": "button",
                        "text": {"type": "plain_text", "text": "Keep"},
                        "value": "k",
                        "action_id": "x",
                    },
                ],
            },
        ],
        number,
        names,
    )
    assert [line.strip() for line in lines] == [
        "hi @alice in #ops & docs",
        "AMI: `ami-1`",
        "› job j-123456",
        "[1 Keep]",
    ]
    assert render.message_lines("plain <@UALICE>", None, number, names) == ["    plain @alice"]
