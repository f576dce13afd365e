"""The outbox in Redis: per-destination FIFO queues of message ids, plus the items themselves.

`<p>outbox:queue:<dest>` is a list of item ids (delivered head first), `<p>outbox:item:<id>`
the item as JSON (a tombstone "sent" once delivered, so a re-enqueued id is not sent twice),
`<p>outbox:dests` a sorted set of destinations scored by when to try them next.
"""

from __future__ import annotations

import json
import time
from typing import Any

from bot.keys import Keys
from bot.messages import OutboxItem
from bot.store import guarded
from bot.store.effects import SENT_TOMBSTONE_S, Effects, EffectWriter

_FINISH = """
if redis.call('LINDEX', KEYS[1], 0) == ARGV[1] then
  redis.call('LPOP', KEYS[1])
end
redis.call('SET', KEYS[2], ARGV[2], 'EX', ARGV[3])
if redis.call('LLEN', KEYS[1]) == 0 then
  redis.call('ZREM', KEYS[3], ARGV[4])
end
return 1
"""

# Forget a destination only if its queue is still empty: a notice enqueued between reading the
# empty queue and removing the destination would otherwise sit in a queue nobody looks at.
_FORGET_IF_EMPTY = """
if redis.call('LLEN', KEYS[1]) == 0 then
  return redis.call('ZREM', KEYS[2], ARGV[1])
end
return 0
"""


class OutboxStore:
    def __init__(self, client: Any, keys: Keys, effects: EffectWriter) -> None:
        self._r = client
        self._keys = keys
        self._effects = effects
        self._finish = client.register_script(_FINISH)
        self._forget_if_empty = client.register_script(_FORGET_IF_EMPTY)

    @guarded
    def enqueue(self, *items: OutboxItem) -> None:
        self._effects.commit(self._r, Effects(notices=items))

    @guarded
    def due_dests(self, now: float, limit: int = 100) -> list[str]:
        return list(self._r.zrangebyscore(self._keys.outbox_dests, "-inf", now, start=0, num=limit))

    @guarded
    def head(self, dest: str) -> OutboxItem | None:
        item_id = self._r.lindex(self._keys.outbox_queue(dest), 0)
        if item_id is None:
            self._forget_if_empty(keys=[self._keys.outbox_queue(dest), self._keys.outbox_dests], args=[dest])
            return None
        raw = self._r.get(self._keys.outbox_item(item_id))
        if not raw or not raw.startswith("{"):
            # already delivered (tombstone) or lost: drop the stale id from the queue
            self._finish_now(dest, item_id, raw or "missing")
            return self.head(dest)
        return OutboxItem.from_dict(json.loads(raw))

    @guarded
    def save(self, item: OutboxItem) -> None:
        """Overwrite a queued item (e.g. to mark it as being sent)."""
        self._r.set(self._keys.outbox_item(item.id), json.dumps(item.to_dict()), xx=True)

    @guarded
    def finish(self, item: OutboxItem, outcome: str = "sent", *, then: tuple[OutboxItem, ...] = ()) -> None:
        """Remove the delivered (or abandoned) head; optionally enqueue follow-ups atomically."""
        with self._r.pipeline(transaction=True) as pipe:
            self._finish_on(pipe, item.dest, item.id, outcome)
            for follow in then:
                self._effects.enqueue(pipe, follow, time.time())
            pipe.execute()

    @guarded
    def defer(self, dest: str, until: float) -> None:
        self._r.zadd(self._keys.outbox_dests, {dest: until}, xx=True)

    @guarded
    def size(self) -> int:
        total = 0
        for dest in self._r.zrange(self._keys.outbox_dests, 0, -1):
            total += int(self._r.llen(self._keys.outbox_queue(dest)))
        return total

    def _finish_now(self, dest: str, item_id: str, outcome: str) -> None:
        with self._r.pipeline(transaction=True) as pipe:
            self._finish_on(pipe, dest, item_id, outcome)
            pipe.execute()

    def _finish_on(self, pipe: Any, dest: str, item_id: str, outcome: str) -> None:
        keys = [self._keys.outbox_queue(dest), self._keys.outbox_item(item_id), self._keys.outbox_dests]
        self._finish(keys=keys, args=[item_id, outcome, SENT_TOMBSTONE_S, dest], client=pipe)
