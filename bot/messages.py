"""Messages waiting in the outbox: what to deliver to Slack, where, and what to do once sent."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, replace
from enum import StrEnum
from typing import Any


class Delivery(StrEnum):
    POST = "post"  # chat.postMessage to `channel` (a channel id, or a user id for a DM)
    UPDATE = "update"  # chat.update of `channel`/`ts`
    RESPOND = "respond"  # POST to a slash command's or action's response_url (ephemeral)


@dataclass(frozen=True)
class OutboxItem:
    """One message to deliver. `id` is deterministic for notices, so enqueueing twice sends once."""

    id: str
    kind: Delivery
    text: str
    blocks: list[dict[str, Any]] | None = None
    channel: str | None = None
    ts: str | None = None
    thread_ts: str | None = None
    response_url: str | None = None
    replace_original: bool = False
    fallback_user: str | None = None  # POST: DM this user when the bot may not post in `channel`
    fallback_channel: str | None = None  # POST: try this channel first (e.g. where it was asked)
    on_sent: str | None = None  # e.g. "approval:a-19bd02": record where the message landed
    created_at: float = 0.0
    sending_since: float | None = None  # set just before the Slack call; see Outbox
    attempts: int = 0
    followups: tuple[str, ...] = ()  # POST: texts posted as thread replies once it has landed

    @property
    def dest(self) -> str:
        """Items for one destination are delivered in order, one at a time."""
        if self.kind is Delivery.RESPOND:
            digest = hashlib.sha256((self.response_url or "").encode()).hexdigest()[:16]
            return f"url:{digest}"
        return self.channel or "-"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> OutboxItem:
        return cls(**{**data, "kind": Delivery(data["kind"]), "followups": tuple(data.get("followups", ()))})

    def thread_replies(self, channel: str, ts: str) -> tuple[OutboxItem, ...]:
        """The follow-ups of a landed message, as replies in its thread (in order)."""
        return tuple(
            OutboxItem(
                id=f"{self.id}:followup:{n}", kind=Delivery.POST, text=text, channel=channel, thread_ts=ts
            )
            for n, text in enumerate(self.followups, start=1)
        )

    def redirected(self, dest: str) -> OutboxItem:
        """The same message sent to another channel, or as a direct message to a user."""
        to_user = dest.startswith(("U", "W"))
        return replace(
            self,
            id=f"{self.id}>{'dm' if to_user else 'ch'}:{dest}",
            kind=Delivery.POST,
            channel=dest,
            response_url=None,
            fallback_user=None if to_user else self.fallback_user,
            fallback_channel=None,
            thread_ts=None,
            sending_since=None,
            attempts=0,
        )

    def fallback(self) -> str | None:
        """Where to send it when the bot may not post in `channel`: another channel, then a DM."""
        for dest in (self.fallback_channel, self.fallback_user):
            if dest and dest != self.channel:
                return dest
        return None
