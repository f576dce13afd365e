"""Delivering the outbox exactly once when Slack answers late, refuses, or another replica takes over:
the real Outbox against a real redis-server and the fake Slack Web API over HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import pytest
from slack_sdk import WebClient

from bot import store
from bot.keys import Keys
from bot.messages import Delivery, OutboxItem
from bot.outbox import Outbox
from bot.store.effects import EffectWriter
from bot.store.leases import Leases
from bot.store.outbox import OutboxStore
from tests.conftest import BOT_TOKEN
from tests.peers import RedisServer

CHANNEL = "CGENERAL"


@dataclass
class Rig:
    outbox: Outbox
    store: OutboxStore
    leases: Leases
    keys: Keys
    client: Any

    def drain(self) -> int:
        """One drain, with the destination due now (whatever backoff the last attempt asked for)."""
        self.store.defer(CHANNEL, 0)
        return self.outbox.drain()


@pytest.fixture
def rig(redis_srv: RedisServer, prefix: str, slack: Any) -> Iterator[Rig]:
    client = store.connect(redis_srv.url)
    keys = Keys(prefix)
    outbox_store = OutboxStore(client, keys, EffectWriter(client, keys))
    leases = Leases(client, keys)
    # a client that gives up after 1 s: a Slack that holds a request longer still applies it
    web = WebClient(token=BOT_TOKEN, base_url=slack.api_url, timeout=1, retry_handlers=[])
    yield Rig(Outbox(outbox_store, leases, web, lease_s=30), outbox_store, leases, keys, client)


def notice(item_id: str, thread_ts: str | None = None) -> OutboxItem:
    return OutboxItem(
        id=item_id, kind=Delivery.POST, text=f"notice {item_id}", channel=CHANNEL, thread_ts=thread_ts
    )


def copies(slack: Any, item_id: str) -> int:
    return sum(
        1
        for m in slack.messages(CHANNEL)
        if ((m.metadata or {}).get("event_payload") or {}).get("notice_id") == item_id
    )


def lost_answer(rig: Rig, slack: Any, item_id: str) -> None:
    """The first post lands in Slack, but its answer never reaches amibot (held past the timeout)."""
    slack.fail_next("chat.postMessage", "timeout", hold_seconds=2.0)
    assert rig.drain() == 0
    head = rig.store.head(CHANNEL)
    assert head is not None and head.id == item_id and head.sending_since is not None
    slack.wait_for(lambda s: copies(s, item_id) == 1, what="the held post to land")


def test_a_rate_limit_after_a_lost_answer_keeps_the_check_for_the_earlier_post(rig: Rig, slack: Any) -> None:
    rig.store.enqueue(notice("n-1"))
    lost_answer(rig, slack, "n-1")
    # the next attempt cannot look (history fails), so it posts: Slack refuses with a 429
    slack.fail_next("conversations.history", "error:fatal_error")
    slack.fail_next("chat.postMessage", "ratelimited", retry_after=0)
    assert rig.drain() == 0
    head = rig.store.head(CHANNEL)
    assert head is not None and head.sending_since is not None  # the first attempt may have posted
    # the attempt after that looks again, finds the first post, and does not post a second one
    assert rig.drain() == 1
    assert copies(slack, "n-1") == 1
    assert rig.store.head(CHANNEL) is None


def test_a_thread_reply_whose_answer_was_lost_is_found_in_its_thread_not_posted_twice(
    rig: Rig, slack: Any
) -> None:
    root = WebClient(token=BOT_TOKEN, base_url=slack.api_url).chat_postMessage(channel=CHANNEL, text="parent")
    rig.store.enqueue(notice("r-1", thread_ts=str(root["ts"])))
    lost_answer(rig, slack, "r-1")
    assert rig.drain() == 1  # found with conversations.replies: thread replies are not in the history
    assert copies(slack, "r-1") == 1
    assert [c.method for c in slack.calls()][-1] == "conversations.replies"


def test_a_drainer_whose_lease_was_taken_stops_before_the_next_item(rig: Rig, slack: Any) -> None:
    for n in range(4):
        rig.store.enqueue(notice(f"q-{n}"))
    lease = rig.keys.lease(f"outbox:{CHANNEL}")

    def taken_over(item: OutboxItem, now: float) -> None:  # e.g. our lease lapsed during a slow post
        rig.client.set(lease, "another-replica", px=30_000)

    slow = Outbox(
        rig.store,
        rig.leases,
        WebClient(token=BOT_TOKEN, base_url=slack.api_url),
        lease_s=30,
        on_delivered=taken_over,
    )
    rig.store.defer(CHANNEL, 0)
    assert slow.drain() == 1  # one item, then it sees the lease is another replica's
    assert [copies(slack, f"q-{n}") for n in range(4)] == [1, 0, 0, 0]
    assert rig.client.get(lease) == "another-replica"  # and it did not release what is not its own
    rig.client.delete(lease)  # that replica's lease ends: the rest is delivered once, in order
    assert rig.drain() == 3
    assert [copies(slack, f"q-{n}") for n in range(4)] == [1, 1, 1, 1]


def test_where_a_message_landed_is_recorded_before_it_is_finished_even_if_redis_fails_then(
    rig: Rig, slack: Any
) -> None:
    """An on_sent hook (e.g. an approval remembering its message, to update it later) that fails
    on Redis leaves the item queued; the next attempt finds the post, does not post again, and
    runs the hook again."""
    from bot.errors import StoreUnavailable

    seen: list[tuple[str, str, str]] = []

    def remember(ident: str, channel: str, ts: str) -> None:
        seen.append((ident, channel, ts))
        if len(seen) == 1:
            raise StoreUnavailable("Redis did not answer")

    web = WebClient(token=BOT_TOKEN, base_url=slack.api_url, timeout=1, retry_handlers=[])
    outbox = Outbox(rig.store, rig.leases, web, lease_s=30, hooks={"approval": remember})
    rig.store.enqueue(replace(notice("h-1"), on_sent="approval:a-123456"))
    rig.store.defer(CHANNEL, 0)
    assert outbox.drain() == 0  # posted, but where it landed could not be recorded: not finished
    assert rig.store.head(CHANNEL) is not None and copies(slack, "h-1") == 1
    rig.store.defer(CHANNEL, 0)
    assert outbox.drain() == 1
    assert copies(slack, "h-1") == 1  # found in the history, not posted again
    (message,) = slack.messages(CHANNEL)
    assert seen == [("a-123456", CHANNEL, message.ts)] * 2
    assert rig.store.head(CHANNEL) is None
