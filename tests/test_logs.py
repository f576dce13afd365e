"""Structured logs: JSON lines, secrets never shown."""

from __future__ import annotations

import io
import json
import logging

from bot.logs import REDACTED, Redactor, configure


def test_secrets_and_slack_tokens_are_redacted_in_messages_args_and_extras() -> None:
    record = logging.LogRecord(
        "amibot", logging.INFO, __file__, 1, "token %s and %s", ("xoxb-123-abc", "s3cr3t-signing"), None
    )
    record.detail = "sent with xapp-1-A0-zz and s3cr3t-signing"
    Redactor(["s3cr3t-signing"]).filter(record)
    assert record.getMessage() == f"token {REDACTED} and {REDACTED}"
    assert record.detail == f"sent with {REDACTED} and {REDACTED}"


def test_configure_writes_json_lines_without_secrets() -> None:
    stream = io.StringIO()
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    try:
        configure("INFO", ["signing-secret-value"])
        root.handlers[0].setStream(stream)  # type: ignore[attr-defined]
        logging.getLogger("amibot.test").info("started with signing-secret-value", extra={"job": "j-abc123"})
        line = json.loads(stream.getvalue().strip().splitlines()[-1])
        assert line["message"] == f"started with {REDACTED}"
        assert line["job"] == "j-abc123" and line["levelname"] == "INFO"
    finally:
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)


def test_waitress_queue_depth_warnings_are_not_made() -> None:
    root = logging.getLogger()
    queue = logging.getLogger("waitress.queue")
    saved = root.handlers[:], root.level, queue.level
    try:
        configure("DEBUG", [])
        assert not queue.isEnabledFor(logging.WARNING)  # no record is even built
        assert queue.isEnabledFor(logging.ERROR)
        assert logging.getLogger("waitress").isEnabledFor(logging.WARNING)
    finally:
        root.handlers[:], root.level = saved[0], saved[1]
        queue.setLevel(saved[2])
