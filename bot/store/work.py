"""Work due for a worker: a sorted set of work items (`job:<id>`, `task:<id>`) by due time,
and the short-lived task documents of queries (list, describe, checks before an approval)."""

from __future__ import annotations

import json
from typing import Any

from bot.keys import Keys
from bot.store import guarded
from bot.store.effects import Effects, EffectWriter

TASK_TTL_S = 3600


class WorkStore:
    def __init__(self, client: Any, keys: Keys, effects: EffectWriter) -> None:
        self._r = client
        self._keys = keys
        self._effects = effects

    @guarded
    def due(self, now: float, limit: int = 50) -> list[str]:
        return list(self._r.zrangebyscore(self._keys.work_due, "-inf", now, start=0, num=limit))

    @guarded
    def reschedule(self, member: str, at: float) -> None:
        self._r.zadd(self._keys.work_due, {member: at}, xx=True)

    @guarded
    def done(self, member: str) -> None:
        self._r.zrem(self._keys.work_due, member)

    @guarded
    def count(self) -> int:
        return int(self._r.zcard(self._keys.work_due))

    @guarded
    def put_task(self, task_id: str, data: dict[str, Any], effects: Effects) -> None:
        """Record a query task and make it due, atomically."""
        key = self._keys.task(task_id)
        self._effects.commit(
            self._r, effects, also=lambda pipe: pipe.set(key, json.dumps(data), ex=TASK_TTL_S)
        )

    @guarded
    def get_task(self, task_id: str) -> dict[str, Any] | None:
        raw = self._r.get(self._keys.task(task_id))
        return json.loads(raw) if raw else None

    @guarded
    def finish_task(self, task_id: str, effects: Effects | None = None) -> None:
        """Drop the task and write its effects (its answer) in one transaction."""

        def drop(pipe: Any) -> None:
            pipe.delete(self._keys.task(task_id))
            pipe.zrem(self._keys.work_due, f"task:{task_id}")

        self._effects.commit(self._r, effects or Effects(), also=drop)
