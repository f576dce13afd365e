"""Delivering the outbox to Slack: in order per destination, once each, whatever Slack does.

- 429: the destination waits for Retry-After; its later items wait behind it (order kept).
- 5xx, timeouts, connection errors: retried with backoff.
- The bot may not post in the asking channel (private, archived, a DM it is not in): the
  notice goes to the requester as a direct message instead. A notice is never silently dropped.
- Exactly once: an item is marked "sending" before the Slack call; if the process dies before
  recording success, the next attempt first looks for the message in the channel's history
  (each notice carries its id in message metadata) and only posts if it is not there.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.webhook import WebhookClient

from bot.errors import StoreUnavailable
from bot.messages import Delivery, OutboxItem
from bot.store.leases import Leases
from bot.store.outbox import OutboxStore

log = logging.getLogger(__name__)

METADATA_EVENT = "amibot_notice"
# The bot may not post there: send the notice to the requester instead.
REDIRECT_ERRORS = frozenset(
    {
        "channel_not_found",
        "not_in_channel",
        "is_archived",
        "channel_is_archived",
        "restricted_action",
        "restricted_action_read_only_channel",
        "restricted_action_thread_only_channel",
        "restricted_action_non_threadable_channel",
        "cannot_dm_bot",
        "ekm_access_denied",
        "team_access_not_granted",
    }
)
# Slack is not working for us right now (try again, do not drop).
RETRY_ERRORS = frozenset(
    {
        "ratelimited",
        "internal_error",
        "fatal_error",
        "service_unavailable",
        "request_timeout",
        "invalid_auth",
        "not_authed",
        "account_inactive",
        "token_revoked",
        "token_expired",
        "teams_not_connected",
    }
)
MAX_BACKOFF_S = 300.0

# on_sent hooks: "approval:a-1" -> hooks["approval"]("a-1", channel, ts)
SentHook = Callable[[str, str, str], None]


@dataclass(frozen=True)
class Sent:
    channel: str = ""
    ts: str = ""


@dataclass(frozen=True)
class Retry:
    at: float
    reason: str


@dataclass(frozen=True)
class Redirect:
    dest: str  # a channel, or a user for a DM
    reason: str


@dataclass(frozen=True)
class Drop:
    reason: str


Outcome = Sent | Retry | Redirect | Drop


class Outbox:
    def __init__(
        self,
        store: OutboxStore,
        leases: Leases,
        slack: WebClient,
        *,
        lease_s: float,
        hooks: Mapping[str, SentHook] | None = None,
        clock: Callable[[], float] = time.time,
        webhook_timeout: int = 10,
        on_slack_call: Callable[[str, str], None] = lambda method, outcome: None,
        on_delivered: Callable[[OutboxItem, float], None] = lambda item, now: None,
    ) -> None:
        self._store = store
        self._leases = leases
        self._slack = slack
        self._lease_s = lease_s
        self._hooks = dict(hooks or {})
        self._clock = clock
        self._webhook_timeout = webhook_timeout
        self._on_slack_call = on_slack_call
        self._on_delivered = on_delivered

    def drain(self, max_items_per_dest: int = 50) -> int:
        """Deliver what is due; returns how many items were delivered."""
        delivered = 0
        try:
            dests = self._store.due_dests(self._clock())
        except StoreUnavailable:
            return 0
        for dest in dests:
            token = self._leases.acquire(f"outbox:{dest}", self._lease_s)
            if token is None:
                continue  # another replica is delivering to this destination
            try:
                delivered += self._drain_dest(dest, max_items_per_dest, token)
            except StoreUnavailable:
                log.warning("state store unavailable while delivering", extra={"dest": dest})
            finally:
                with contextlib.suppress(StoreUnavailable):
                    self._leases.release(f"outbox:{dest}", token)
        return delivered

    def _drain_dest(self, dest: str, limit: int, token: str) -> int:
        count = 0
        for n in range(limit):
            # Another replica may take the destination once our lease lapses (a slow Slack, a long
            # backlog): renew it before each item, and stop if it is no longer ours.
            if n and not self._leases.renew(f"outbox:{dest}", token, self._lease_s):
                log.warning("outbox lease lost; another replica goes on", extra={"dest": dest})
                break
            item = self._store.head(dest)
            if item is None:
                break
            outcome = self._deliver(item)
            if isinstance(outcome, Sent):
                self._record_where(item, outcome)  # first: if that fails, the item is not finished
                replies = item.thread_replies(outcome.channel, outcome.ts) if outcome.ts else ()
                self._store.finish(item, "sent", then=replies)
                self._on_delivered(item, self._clock())
                count += 1
            elif isinstance(outcome, Redirect):
                log.warning("message redirected", extra={"item": item.id, "reason": outcome.reason})
                self._store.finish(
                    item, f"redirected:{outcome.reason}", then=(item.redirected(outcome.dest),)
                )
            elif isinstance(outcome, Drop):
                log.error("notice dropped", extra={"item": item.id, "reason": outcome.reason})
                self._store.finish(item, f"dropped:{outcome.reason}")
            else:
                log.info("delivery deferred", extra={"dest": dest, "reason": outcome.reason})
                self._store.defer(dest, outcome.at)
                break
        return count

    def _record_where(self, item: OutboxItem, sent: Sent) -> None:
        """Run the item's on_sent hook (e.g. remember where an approval message landed) before the
        item is finished. Hooks are idempotent: when Redis fails here (StoreUnavailable goes up),
        the item stays queued, the next attempt finds the post in Slack's history instead of
        posting again, and runs the hook again."""
        if not item.on_sent:
            return
        name, _, ident = item.on_sent.partition(":")
        hook = self._hooks.get(name)
        if hook is None:
            return
        try:
            hook(ident, sent.channel, sent.ts)
        except StoreUnavailable:
            raise
        except Exception:  # a bug in a hook must not hold up the destination's queue
            log.exception("on_sent hook failed", extra={"item": item.id})

    # one delivery attempt ------------------------------------------------------------------

    def _deliver(self, item: OutboxItem) -> Outcome:
        if item.kind is Delivery.RESPOND:
            return self._respond(item)
        if item.kind is Delivery.POST and item.sending_since is not None:
            found = self._already_posted(item)
            if found is not None:
                return found
        attempt = replace(item, sending_since=item.sending_since or self._clock())
        self._store.save(attempt)
        try:
            if item.kind is Delivery.UPDATE:
                resp = self._call(
                    "chat.update", channel=item.channel, ts=item.ts, text=item.text, blocks=item.blocks
                )
            else:
                resp = self._call(
                    "chat.postMessage",
                    channel=item.channel,
                    text=item.text,
                    blocks=item.blocks,
                    thread_ts=item.thread_ts,
                    metadata={"event_type": METADATA_EVENT, "event_payload": {"notice_id": item.id}},
                    unfurl_links=False,
                )
        except SlackApiError as exc:
            return self._on_api_error(item, exc)
        except (SlackClientError, OSError) as exc:
            return self._backoff(item, f"slack unreachable: {type(exc).__name__}")
        return Sent(
            channel=str(resp.get("channel") or item.channel or ""), ts=str(resp.get("ts") or item.ts or "")
        )

    def _call(self, method: str, **params: Any) -> Any:
        body = {k: v for k, v in params.items() if v is not None}
        try:
            resp = self._slack.api_call(method, json=body)
        except SlackApiError as exc:
            self._on_slack_call(method, str(exc.response.get("error") or exc.response.status_code))
            raise
        except Exception as exc:
            self._on_slack_call(method, type(exc).__name__)
            raise
        self._on_slack_call(method, "ok")
        return resp

    def _on_api_error(self, item: OutboxItem, exc: SlackApiError) -> Outcome:
        status = exc.response.status_code
        error = str(exc.response.get("error") or f"http_{status}")
        if status == 429 or error == "ratelimited":
            retry_after = _retry_after(exc.response.headers)
            # this attempt certainly did not post, but an earlier one may have: keep its marker
            self._store.save(item)
            return Retry(self._clock() + retry_after, f"rate limited for {retry_after:g}s")
        fallback = item.fallback()
        if error in REDIRECT_ERRORS and fallback:
            return Redirect(fallback, error)
        if error in ("invalid_blocks", "invalid_blocks_format") and item.blocks:
            self._store.save(replace(item, blocks=None))
            return Retry(self._clock(), "blocks refused; retrying as text")
        if error == "message_not_found" and item.kind is Delivery.UPDATE:
            return Drop(error)
        if status >= 500 or error in RETRY_ERRORS:
            return self._backoff(item, error)
        if fallback:
            return Redirect(fallback, error)
        return Drop(error)

    def _backoff(self, item: OutboxItem, reason: str) -> Retry:
        current = self._store.head(item.dest) or item
        if current.id == item.id:
            self._store.save(replace(current, attempts=current.attempts + 1))
        delay = min(MAX_BACKOFF_S, 0.5 * 2 ** min(current.attempts, 12))
        return Retry(self._clock() + delay, reason)

    def _already_posted(self, item: OutboxItem) -> Sent | None:
        """Did an earlier attempt post it before we could record that? Look for its id."""
        channel = item.channel or ""
        try:
            if channel.startswith(("U", "W")):
                channel = self._call("conversations.open", users=channel)["channel"]["id"]
            oldest = f"{(item.sending_since or 0) - 5:.6f}"
            # a reply is not in the channel's history, only in its thread
            method = "conversations.replies" if item.thread_ts else "conversations.history"
            history = self._call(
                method,
                channel=channel,
                ts=item.thread_ts,  # dropped by _call when None
                oldest=oldest,
                limit=200,
                include_all_metadata=True,
            )
        except (SlackApiError, SlackClientError, OSError) as exc:
            log.warning(
                "could not check for an earlier post; sending", extra={"item": item.id, "error": str(exc)}
            )
            return None
        for message in history.get("messages", []):
            payload = (message.get("metadata") or {}).get("event_payload") or {}
            if payload.get("notice_id") == item.id:
                return Sent(channel=channel, ts=str(message.get("ts", "")))
        return None

    def _respond(self, item: OutboxItem) -> Outcome:
        if not item.response_url:
            return (
                Redirect(item.fallback_user, "no response url")
                if item.fallback_user
                else Drop("no response url")
            )
        body: dict[str, Any] = {"text": item.text, "response_type": "ephemeral"}
        if item.blocks:
            body["blocks"] = item.blocks
        if item.replace_original:
            body["replace_original"] = True
        try:
            resp = WebhookClient(
                item.response_url, timeout=self._webhook_timeout, retry_handlers=[]
            ).send_dict(body)
        except (SlackClientError, OSError) as exc:
            self._on_slack_call("response_url", type(exc).__name__)
            return self._backoff(item, f"response url unreachable: {type(exc).__name__}")
        self._on_slack_call("response_url", str(resp.status_code))
        if resp.status_code == 200:
            return Sent()
        if resp.status_code == 429:
            return Retry(self._clock() + _retry_after(resp.headers), "rate limited")
        if resp.status_code >= 500:
            return self._backoff(item, f"response url answered {resp.status_code}")
        # 404/410: expired (30 min) or used up (5 uses): tell the person directly instead
        if item.fallback_user:
            return Redirect(item.fallback_user, f"response url answered {resp.status_code}")
        return Drop(f"response url answered {resp.status_code}")


def _retry_after(headers: Mapping[str, Any] | None) -> float:
    for key, value in (headers or {}).items():
        if key.lower() == "retry-after":
            raw = value[0] if isinstance(value, list) else value
            try:
                return max(0.0, float(raw))
            except (TypeError, ValueError):
                break
    return 1.0
