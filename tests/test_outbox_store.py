"""The outbox's Redis queues when a drainer and a producer interleave, against a real redis-server."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bot import store
from bot.keys import Keys
from bot.messages import Delivery, OutboxItem
from bot.store.effects import EffectWriter
from bot.store.outbox import OutboxStore
from tests.peers import RedisServer


class EmptyReadThen:
    """A Redis client that runs `meanwhile` right after a read of a queue finds it empty: the
    moment another process's enqueue can land, made deterministic."""

    def __init__(self, client: Any, meanwhile: Callable[[], None]) -> None:
        self._client = client
        self._meanwhile = meanwhile

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def lindex(self, *args: Any) -> Any:
        value = self._client.lindex(*args)
        if value is None:
            self._meanwhile()
        return value


def notice(item_id: str) -> OutboxItem:
    return OutboxItem(id=item_id, kind=Delivery.POST, text="ready", channel="CGENERAL")


def test_a_notice_enqueued_just_after_the_drainer_found_the_queue_empty_is_not_stranded(
    redis_srv: RedisServer, prefix: str
) -> None:
    keys = Keys(prefix)
    client = store.connect(redis_srv.url)
    producer = OutboxStore(client, keys, EffectWriter(client, keys))
    enqueued: list[str] = []

    def enqueue_once() -> None:
        if not enqueued:
            enqueued.append("n-1")
            producer.enqueue(notice("n-1"))

    drainer_client = EmptyReadThen(client, enqueue_once)
    drainer = OutboxStore(drainer_client, keys, EffectWriter(drainer_client, keys))
    producer.enqueue(notice("n-0"))
    first = drainer.head("CGENERAL")
    assert first is not None and first.id == "n-0"
    drainer.finish(first)

    assert drainer.head("CGENERAL") is None  # read empty; n-1 is enqueued right then
    assert enqueued == ["n-1"]
    # the destination must still be listed, or nobody would look at its queue again
    assert drainer.due_dests(float("inf")) == ["CGENERAL"]
    second = drainer.head("CGENERAL")
    assert second is not None and second.id == "n-1"
    drainer.finish(second)
    assert drainer.head("CGENERAL") is None
    assert drainer.due_dests(float("inf")) == []  # an empty destination is forgotten
