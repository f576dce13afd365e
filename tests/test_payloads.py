"""The gate before Bolt (pure parts): header formats, request shapes, signatures and replays."""

from __future__ import annotations

import json
import time
from urllib.parse import urlencode

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.payloads import body_problem, header_problem
from bot.request_guard import RequestGuard
from tests.slack_requests import block_action_body, command_body, signed_headers

SECRET = "guard-secret"


def test_well_formed_slack_requests_pass() -> None:
    assert body_problem(command_body("help"), "application/x-www-form-urlencoded") is None
    assert (
        body_problem(block_action_body("ami_approve", "a-123456"), "application/x-www-form-urlencoded")
        is None
    )
    event = json.dumps({"type": "event_callback", "event": {"type": "app_home_opened", "user": "U1"}})
    assert body_problem(event, "application/json") is None


def test_misshapen_requests_are_named() -> None:
    form = "application/x-www-form-urlencoded"
    assert (
        body_problem(urlencode({"command": "/ami", "text": "help"}), form) == "slash command without user_id"
    )
    for payload, problem in [
        ({"type": "block_actions", "user": {"id": "U1"}, "actions": "nope"}, "block_actions without actions"),
        ({"type": "block_actions", "user": {"id": "U1"}, "actions": [1]}, "an action without an action_id"),
        ({"type": "view_closed", "view": "nope"}, "payload field view is not an object"),
        (
            {"type": "view_submission", "user": {"id": "U1"}, "view": {"callback_id": "x"}},
            "view_submission without view.type",
        ),
        ([1, 2], "payload is not a JSON object with a type"),
    ]:
        assert body_problem(urlencode({"payload": json.dumps(payload)}), form) == problem
    assert body_problem("not json", "application/json") == "expected a JSON object with a type"


def test_header_formats() -> None:
    assert header_problem("1700000000", "v0=" + "a" * 64) is None
    assert header_problem("yesterday", "v0=" + "a" * 64) is not None
    assert header_problem("9" * 400, "v0=" + "a" * 64) is not None
    assert header_problem("1700000000", "v0=été") is not None
    assert header_problem(None, None) is not None


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300), st.sampled_from(["application/json", "application/x-www-form-urlencoded", ""]))
def test_any_body_gives_none_or_a_problem_never_an_exception(body: str, content_type: str) -> None:
    problem = body_problem(body, content_type)
    assert problem is None or (isinstance(problem, str) and problem)


@settings(max_examples=200, deadline=None)
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=5),
        lambda inner: (
            st.lists(inner, max_size=3)
            | st.dictionaries(
                st.sampled_from(
                    ["type", "user", "actions", "view", "team", "action_id", "value", "id", "callback_id"]
                ),
                inner,
                max_size=5,
            )
        ),
        max_leaves=12,
    )
)
def test_any_json_payload_gives_none_or_a_problem(payload: object) -> None:
    problem = body_problem(urlencode({"payload": json.dumps(payload)}), "application/x-www-form-urlencoded")
    assert problem is None or isinstance(problem, str)


def test_signatures_timestamps_and_replays() -> None:
    seen: set[tuple[str, str]] = set()

    def once(kind: str, ident: str, ttl: float) -> bool:  # what Leases.once does in Redis
        if (kind, ident) in seen:
            return False
        seen.add((kind, ident))
        return True

    guard = RequestGuard(SECRET, once)
    body = command_body("help")
    headers = signed_headers(body, SECRET)
    assert guard.problem(body, headers) is None
    assert guard.problem(body, headers) == (401, "replayed request")
    forged = {**headers, "x-slack-signature": "v0=" + "0" * 64}
    assert guard.problem(body, forged) == (401, "invalid signature or stale timestamp")
    stale = signed_headers(body, SECRET, timestamp=int(time.time()) - 600)
    assert guard.problem(body, stale) == (401, "invalid signature or stale timestamp")
    misshapen = urlencode({"command": "/ami", "text": "help"})
    assert guard.problem(misshapen, signed_headers(misshapen, SECRET)) == (
        400,
        "slash command without user_id",
    )
