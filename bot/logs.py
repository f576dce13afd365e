"""Structured JSON logs with secrets redacted."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable

from pythonjsonlogger.json import JsonFormatter

REDACTED = "[redacted]"


class Redactor(logging.Filter):
    """Replace every known secret (and anything that looks like a Slack token) in a record."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self._secrets = [s for s in secrets if len(s) >= 6]

    def _clean(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, REDACTED)
        for prefix in ("xoxb-", "xoxp-", "xapp-", "xoxe-"):
            while prefix in text:
                start = text.index(prefix)
                end = start
                while end < len(text) and (text[end].isalnum() or text[end] in "-_"):
                    end += 1
                text = text[:start] + REDACTED + text[end:]
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        if record.args:
            record.msg = record.getMessage()
            record.args = None
        if isinstance(record.msg, str):
            record.msg = self._clean(record.msg)
        for key, value in list(record.__dict__.items()):
            if isinstance(value, str) and key not in ("msg", "name", "levelname", "pathname", "filename"):
                record.__dict__[key] = self._clean(value)
        return True


def configure(level: str, secrets: Iterable[str], *, json_output: bool = True) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if json_output:
        handler.setFormatter(JsonFormatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(Redactor(secrets))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("apscheduler").setLevel(logging.ERROR)  # "skipped: max instances" is routine
    for noisy in ("botocore", "boto3", "urllib3", "slack_bolt", "slack_sdk", "waitress"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))
    # waitress warns "Task queue depth is N" on every request that waits for a thread during a
    # burst: routine (requests queue for milliseconds), and building that record on every request
    # cost the ack path a tenth of its CPU under load.
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)
