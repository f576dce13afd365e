"""HTTP mode's gate before Bolt: Slack's signature and timestamp, replays, and the request's shape.

- The signature headers must be well formed and the signature valid for the body, with a
  timestamp within Slack's five minutes: else 401.
- A request whose signature was already accepted is a replay: 401 (signatures are remembered in
  Redis a little longer than the five minutes, across replicas). If Redis is down nothing can be
  changed anyway, so the request goes on and is answered "state store unavailable".
- A signed body that is not the shape of a Slack request: 400.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from slack_sdk.signature import SignatureVerifier

from bot.errors import StoreUnavailable
from bot.payloads import body_problem, header_problem

REPLAY_WINDOW_S = 330.0


class RequestGuard:
    def __init__(self, signing_secret: str | None, once: Callable[[str, str, float], bool]) -> None:
        self._verifier = SignatureVerifier(signing_secret) if signing_secret else None
        self._once = once

    def problem(self, body: str, headers: Mapping[str, str]) -> tuple[int, str] | None:
        """(HTTP status, reason) when the request must not reach Bolt, else None."""
        if self._verifier is None:
            return None
        timestamp = headers.get("x-slack-request-timestamp")
        signature = headers.get("x-slack-signature")
        malformed = header_problem(timestamp, signature)
        if malformed is not None:
            return 401, malformed
        assert timestamp is not None and signature is not None
        if not self._verifier.is_valid(body=body, timestamp=timestamp, signature=signature):
            return 401, "invalid signature or stale timestamp"
        try:
            if not self._once("signature", signature, REPLAY_WINDOW_S):
                return 401, "replayed request"
        except StoreUnavailable:
            pass
        shape = body_problem(body, headers.get("content-type", ""))
        if shape is not None:
            return 400, shape
        return None
