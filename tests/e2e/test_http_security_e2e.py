"""The HTTP edge of the real `amibot run --http` process: request verification, bad input of every
kind, a Redis outage and `/healthz`. Whatever arrives, nothing changes unless a valid, signed
request asks for it, and the answer is a clear message or a 4xx, never a 5xx."""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlencode

import pytest

from tests.conftest import SIGNING_SECRET
from tests.e2e.harness import (
    JOB_ID,
    Asker,
    BotProcess,
    SlackSigner,
    ack_text,
    block_actions_body,
    job_id_of,
    metric,
    own_images,
    slash_command_body,
)
from tests.peers import redis_server, wait_until

pytestmark = pytest.mark.e2e

INSTANCE = "i-0123456789abcdef0"  # well-formed; does not exist (nothing may reach AWS anyway)


def assert_nothing_changed(bot: BotProcess, redis: Any, prefix: str, moto: Any, slack: Any) -> None:
    """No job, no work, no audit entry under the prefix; no AWS call; no image; nothing posted."""
    keys = sorted(k for k in redis.scan_iter(f"{prefix}*") if not k.startswith(f"{prefix}lease:"))
    assert not [k for k in keys if k.startswith((f"{prefix}job:", f"{prefix}work:", f"{prefix}audit"))], keys
    assert redis.zcard(f"{prefix}jobs:active") == 0
    assert metric(bot.metrics(), "amibot_aws_calls_total") == 0
    assert own_images(moto) == []
    assert slack.posts() == []
    assert slack.responses() == []


# --- request verification -------------------------------------------------------------------


def test_forged_stale_replayed_or_unsigned_requests_get_401_and_change_nothing(
    start_bot: Callable[..., BotProcess], slack: Any, moto: Any, redis_srv: Any, prefix: str
) -> None:
    bot = start_bot(AMIBOT_TEAM_ID="T0001")
    body = slash_command_body(f"create {INSTANCE}", slack.new_response_url())
    now = int(time.time())
    good = SlackSigner(SIGNING_SECRET)
    valid = good.headers(body, now)
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    other_body = slash_command_body(f"create {INSTANCE} --name other", slack.new_response_url())

    cases: dict[str, tuple[bytes, dict[str, str]]] = {
        "signed with another secret": (body, SlackSigner("not-the-secret").headers(body, now)),
        "signature of another body": (
            body,
            {**valid, "X-Slack-Signature": good.headers(other_body, now)["X-Slack-Signature"]},
        ),
        "body changed after signing": (body + b"&text=status", valid),
        "stale timestamp (6 minutes old), validly signed": (body, good.headers(body, now - 360)),
        "timestamp 6 minutes in the future, validly signed": (body, good.headers(body, now + 360)),
        "replay: old signature with a new timestamp": (
            body,
            {**good.headers(body, now - 360), "X-Slack-Request-Timestamp": str(now)},
        ),
        "no signature headers": (body, form),
        "no timestamp header": (body, {**form, "X-Slack-Signature": valid["X-Slack-Signature"]}),
        "no signature header": (
            body,
            {**form, "X-Slack-Request-Timestamp": valid["X-Slack-Request-Timestamp"]},
        ),
        "empty signature": (body, {**valid, "X-Slack-Signature": ""}),
        "signature without v0=": (body, {**valid, "X-Slack-Signature": valid["X-Slack-Signature"][3:]}),
        "another signature version": (
            body,
            {**valid, "X-Slack-Signature": "v1=" + valid["X-Slack-Signature"][3:]},
        ),
        "negative timestamp": (body, {**valid, "X-Slack-Request-Timestamp": "-1"}),
    }
    for name, (data, headers) in cases.items():
        resp = bot.post(data, headers)
        assert resp.status == 401, (name, resp)

    # a button click with a forged signature is refused the same way
    click = block_actions_body("ami_approve", "a-123456", slack.new_response_url())
    assert bot.post(click, SlackSigner("not-the-secret").headers(click)).status == 401

    # a validly signed command from another workspace is refused, with a reason
    foreign = slash_command_body(f"create {INSTANCE}", slack.new_response_url(), Asker(team="T9999"))
    resp = bot.post_signed(foreign)
    assert "does not serve this workspace" in ack_text(resp), resp
    assert not job_ids_in(resp)

    assert bot.get("/slack/events").status == 405
    assert_nothing_changed(bot, redis_srv.client(), prefix, moto, slack)

    # and the same request, signed properly, does work (the 401s were about the signature)
    resp = bot.post(body, valid)
    assert resp.status == 200 and job_id_of(resp), resp


@pytest.mark.parametrize(
    "header, value",
    [
        ("X-Slack-Request-Timestamp", "yesterday"),
        ("X-Slack-Request-Timestamp", "9" * 400),
        ("X-Slack-Signature", "v0=\u00e9t\u00e9"),
    ],
    ids=["timestamp not a number", "timestamp of 400 digits", "non-ASCII signature"],
)
def test_malformed_signature_headers_get_401_not_500(
    header: str, value: str, idle_bot: BotProcess, slack: Any
) -> None:
    bot = idle_bot
    body = slash_command_body(f"create {INSTANCE}", slack.new_response_url())
    headers = {**SlackSigner(SIGNING_SECRET).headers(body), header: value}
    resp = bot.post(body, headers)
    assert resp.status == 401, resp


def job_ids_in(resp: Any) -> list[str]:
    return JOB_ID.findall(resp.text)


def test_an_exact_replay_within_five_minutes_is_refused(
    start_bot: Callable[..., BotProcess], slack: Any, moto: Any, redis_srv: Any, prefix: str
) -> None:
    bot = start_bot()
    body = slash_command_body(f"create {INSTANCE} --name replayed", slack.new_response_url())
    headers = SlackSigner(SIGNING_SECRET).headers(body)
    first = bot.post(body, headers)
    assert first.status == 200 and job_id_of(first)
    again = bot.post(body, headers)
    assert again.status == 401, again
    assert redis_srv.client().zcard(f"{prefix}jobs:active") <= 1


# --- bad input --------------------------------------------------------------------------------

I = INSTANCE  # noqa: E741 (short, for the table)
BAD_COMMANDS: list[tuple[str, str, tuple[str, ...], bool]] = [
    # (case, text, what the answer must say, shows the usage line)
    ("unknown subcommand", "frobnicate now", ("unknown subcommand", "frobnicate"), False),
    ("misspelt subcommand", f"creat {I}", ("did you mean create",), False),
    ("missing instance id", "create --name web-golden", ("missing INSTANCE_ID",), True),
    ("malformed instance id", "create i-123", ("i-123", "not an instance id"), True),
    ("upper-case instance id", "create I-0123456789ABCDEF0", ("not an instance id",), True),
    ("empty instance id", 'create ""', ("not an instance id",), True),
    ("name too short", f"create {I} --name ab", ("ab", "3 to 128"), True),
    ("name with bad characters", f"create {I} --name 'web#golden'", ("#",), True),
    ("name of 129 characters", f"create {I} --name {'n' * 129}", ("129",), True),
    ("curly-quoted name with bad characters", f"create {I} --name “web golden!”", ("!",), True),
    ("unbalanced quote", f'create {I} --name "web golden', ("unbalanced quote",), True),
    ("lone backslash", f"create {I} \\", ("backslash",), True),
    ("tag without =", f"create {I} --tag team", ("team", "KEY=VALUE"), True),
    ("tag with an empty key", f"create {I} --tag =web", ("empty key",), True),
    ("aws: tag key", f"create {I} --tag aws:team=web", ("aws:",), True),
    ("reserved tag key", f"create {I} --tag amibot:job=j-123456", ("amibot:job",), True),
    ("the same tag twice", f"create {I} --tag a=1 --tag a=2", ("twice",), True),
    ("too many tags", f"create {I} " + " ".join(f"--tag k{n}=v" for n in range(49)), ("49", "48"), True),
    ("unknown option", f"create {I} --colour blue", ("unknown option", "--colour"), True),
    ("option without value", f"create {I} --name", ("--name", "needs a value"), True),
    ("empty description", f"create {I} --description ''", ("--description",), True),
    ("flag with a value", f"create {I} --reboot=maybe", ("--reboot", "maybe"), True),
    ("duplicated --name", f"create {I} --name web-one --name web-two", ("--name", "once"), True),
    ("region not real", f"create {I} --region mars-north-1", ("mars-north-1", "not an AWS region"), True),
    ("region not allowed", f"create {I} --region ap-southeast-2", ("ap-southeast-2", "us-east-1"), True),
    ("region as a positional", f"create {I} us-east-1", ("unexpected argument", "--region"), True),
    ("account not configured", f"create {I} --account prod", ("prod",), True),
    ("5,000-character text", "create " + "x" * 4993, ("too long", "5000"), False),
    ("control characters", "\x00\x01\x02\x1b[31m\x7f", ("unknown subcommand",), False),
    ("unicode garbage", "create 💥🦄\u202e\u200b𝕚-𝟘𝟙𝟚𝟛", ("not an instance id",), True),
    ("html-escaped script", "&lt;script&gt;alert(1)&lt;/script&gt;", ("unknown subcommand",), False),
    ("status of an unknown job", "status j-000000", ("j-000000",), True),
    ("malformed job id", "status job-1", ("job-1", "not a job id"), True),
    ("status with extra words", "status j-abcdef now", ("unexpected argument",), True),
    ("help on nothing", "help frobnicate", ("no help", "frobnicate"), True),
    ("copy without --to", "copy ami-0123456789abcdef0", ("--to",), True),
]


def test_bad_commands_get_a_clear_ephemeral_answer_and_change_nothing(
    start_bot: Callable[..., BotProcess], slack: Any, moto: Any, redis_srv: Any, prefix: str
) -> None:
    bot = start_bot()
    problems = []
    for case, text, says, usage in BAD_COMMANDS:
        resp = bot.command(text, slack.new_response_url())
        try:
            answer = ack_text(resp)
        except AssertionError as exc:
            problems.append(f"{case}: {exc}")
            continue
        missing = [part for part in says if part.lower() not in answer.lower()]
        if missing or (usage and "Usage:" not in answer) or "Traceback" in answer or "went wrong" in answer:
            problems.append(f"{case}: {text[:60]!r} → {answer!r} (missing {missing}, usage {usage})")
    assert not problems, "\n".join(problems)

    # no text, or only whitespace: the overview of every subcommand
    for text in ("", "   \t  ", "\u00a0\u3000"):
        answer = ack_text(bot.command(text, slack.new_response_url()))
        assert "/ami create" in answer and "/ami status" in answer, (text, answer)
    body = {k: v for k, v in _form(slash_command_body("x", slack.new_response_url())).items() if k != "text"}
    answer = ack_text(bot.post_signed(urlencode(body).encode()))
    assert "/ami create" in answer, answer

    assert_nothing_changed(bot, redis_srv.client(), prefix, moto, slack)


def _form(body: bytes) -> dict[str, str]:
    from urllib.parse import parse_qsl

    return dict(parse_qsl(body.decode(), keep_blank_values=True))


def _junk(rng: random.Random) -> str:
    alphabet = "abcxyz/-=&%+ \n\t\"'{}[]:,0123456789“”—\u0000\u202eé💥"
    return "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 20)))


def _junk_json(rng: random.Random, depth: int) -> Any:
    choice = rng.randint(0, 6 if depth > 0 else 3)
    if choice == 0:
        return None
    if choice == 1:
        return rng.randint(-(10**6), 10**6)
    if choice == 2:
        return _junk(rng)
    if choice == 3:
        return rng.choice(
            ["block_actions", "view_submission", "shortcut", "message_action", "block_suggestion"]
        )
    if choice == 4:
        return [_junk_json(rng, depth - 1) for _ in range(rng.randint(0, 3))]
    keys = ["type", "user", "team", "actions", "view", "channel", "container", "response_url", _junk(rng)]
    return {rng.choice(keys): _junk_json(rng, depth - 1) for _ in range(rng.randint(0, 5))}


def _payload(data: Any) -> bytes:
    return urlencode({"payload": json.dumps(data)}).encode()


def test_garbage_payloads_with_a_valid_signature_get_4xx_or_a_clear_answer(
    start_bot: Callable[..., BotProcess], slack: Any, moto: Any, redis_srv: Any, prefix: str
) -> None:
    bot = start_bot()
    url = slack.new_response_url()
    payloads: dict[str, tuple[bytes, str | None]] = {
        "payload= not JSON": (b"payload=%7Bnot+json", None),
        "payload= JSON of an unknown type": (_payload({"type": "weird"}), None),
        "payload= a JSON list": (_payload([1, 2]), None),
        "payload= JSON null": (b"payload=null", None),
        "payload= a JSON number": (b"payload=42", None),
        "payload= empty": (b"payload=", None),
        "empty body": (b"", None),
        "a body of 2 MB": (b"text=" + b"x" * 2_000_000, None),
        "binary body": (bytes(range(256)) * 4, None),
        "form of only &&&": (b"&&&=&=", None),
        "another command": (slash_command_body("create", url, command="/other"), None),
        "command without user or channel": (b"command=%2Fami&text=help", None),
        "JSON body, not JSON": (b"{not json", "application/json"),
        "JSON body, a string": (b'"hello"', "application/json"),
        "JSON body, unknown event": (
            json.dumps({"type": "event_callback", "event": {"type": "no_such_event"}}).encode(),
            "application/json",
        ),
        "block_actions with an unknown action": (block_actions_body("no_such_action", "x", url), None),
        "block_actions without actions": (_payload({"type": "block_actions", "user": {"id": "U1"}}), None),
        "shortcut nobody listens to": (_payload({"type": "shortcut", "callback_id": "nope"}), None),
    }
    problems = []
    for name, (body, content_type) in payloads.items():
        resp = bot.post_signed(body, content_type=content_type)
        if resp.status >= 500 or "Traceback" in resp.text:
            problems.append(f"{name}: {resp}")

    # a seeded fuzz of signed bodies: random bytes and random forms
    rng = random.Random(20261127)
    for n in range(60):
        if n % 2:
            body = rng.randbytes(rng.randint(0, 400))
        else:
            fields = {_junk(rng): _junk(rng) for _ in range(rng.randint(0, 6))}
            if rng.random() < 0.5:
                fields["command"] = "/ami"
            body = urlencode(fields).encode()
        resp = bot.post_signed(body)
        if resp.status >= 500:
            problems.append(f"fuzz {body[:200]!r}: {resp}")
    assert not problems, "\n".join(problems)

    assert bot.get("/healthz").status == 200
    assert_nothing_changed(bot, redis_srv.client(), prefix, moto, slack)


def _json_fuzz() -> list[bytes]:
    rng = random.Random(20261128)
    return [_payload(_junk_json(rng, 3)) for _ in range(80)]


@pytest.mark.parametrize(
    "bodies",
    [
        [_payload({"type": "block_actions", "user": {"id": "U1"}, "actions": "nope"})],
        [_payload({"type": "block_actions", "user": {"id": "U1"}, "actions": [1, 2]})],
        [_payload({"type": "view_submission", "user": {"id": "U1"}, "view": {"callback_id": "nope"}})],
        [_payload({"type": "view_closed", "view": "nope"})],
        _json_fuzz(),
    ],
    ids=[
        "actions not a list",
        "actions not objects",
        "view without a type",
        "view not an object",
        "seeded fuzz of JSON payloads",
    ],
)
def test_malformed_interaction_payloads_get_4xx_not_500(bodies: list[bytes], idle_bot: BotProcess) -> None:
    statuses = [idle_bot.post_signed(body).status for body in bodies]
    assert max(statuses) < 500, statuses


def test_a_command_without_user_or_channel_is_refused(
    start_bot: Callable[..., BotProcess], slack: Any, moto: Any, instance: str, redis_srv: Any, prefix: str
) -> None:
    bot = start_bot()
    resp = bot.post_signed(urlencode({"command": "/ami", "text": f"create {instance}"}).encode())
    assert resp.status < 500, resp
    assert not job_ids_in(resp), resp
    assert redis_srv.client().zcard(f"{prefix}jobs:active") == 0


# --- Redis outage --------------------------------------------------------------------------


def test_redis_outage_503_then_reconnects_by_itself(
    start_bot: Callable[..., BotProcess], slack: Any, moto: Any, instance: str
) -> None:
    with redis_server() as own_redis:  # not the session's: stopping it disturbs no other test
        bot = start_bot(REDIS_URL=own_redis.url)
        assert bot.get("/healthz").status == 200

        own_redis.stop()
        try:
            wait_until(lambda: bot.get("/healthz").status == 503, timeout=10, what="/healthz 503")
            resp = bot.command(f"create {instance} --name 'web outage 1'", slack.new_response_url())
            assert resp.status == 200 and resp.seconds < 3, resp
            assert "state store unavailable, try again" in ack_text(resp)
            assert not job_ids_in(resp)
            status = bot.command("status", slack.new_response_url())
            assert "state store unavailable" in ack_text(status)
        finally:
            own_redis.start()

        wait_until(lambda: bot.get("/healthz").status == 200, timeout=15, what="/healthz 200 again")
        job_id = job_id_of(bot.command(f"create {instance} --name 'web outage 2'", slack.new_response_url()))
        notice = slack.wait_for(lambda s: s.posts("CGENERAL"), timeout=15, what="the notice")
        assert job_id in notice[0].params["text"]
        names = [image["Name"] for image in own_images(moto)]
        assert names == ["web outage 2"], names  # the refused command made nothing
        assert bot.running


def test_a_hung_redis_still_gets_an_answer_within_slacks_3_seconds(
    start_bot: Callable[..., BotProcess], slack: Any, moto: Any
) -> None:
    with redis_server() as own_redis:
        bot = start_bot(REDIS_URL=own_redis.url)
        assert own_redis.process is not None
        with frozen(own_redis.process.pid):
            resp = bot.command(f"create {INSTANCE}", slack.new_response_url())
        assert "state store unavailable" in ack_text(resp)
        assert resp.seconds < 3, resp.seconds


@contextlib.contextmanager
def frozen(pid: int) -> Iterator[None]:
    """SIGSTOP a process this test started (it keeps its connections but answers nothing), then SIGCONT."""
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)
