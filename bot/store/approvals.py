"""Approvals in Redis: one JSON document each, a sorted set of pending ones by expiry.

Every change goes through `update()` (WATCH/MULTI like jobs), so of two clicks at the same
moment exactly one decides; the other re-reads and finds the approval already decided.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Callable
from typing import Any

from bot.approvals import Approval, ApprovalState
from bot.keys import Keys
from bot.store import guarded
from bot.store.effects import Effects, EffectWriter, update_watched

DECIDED_TTL_S = 30 * 24 * 3600
RECENT_KEEP = 500

ApprovalChange = Callable[[Approval], tuple[Approval, Effects] | None]


class ApprovalStore:
    def __init__(self, client: Any, keys: Keys, effects: EffectWriter) -> None:
        self._r = client
        self._keys = keys
        self._effects = effects

    @guarded
    def create(self, approval: Approval, effects: Effects | None = None) -> None:
        self._effects.commit(self._r, effects or Effects(), also=lambda pipe: self._write(pipe, approval))

    @guarded
    def id_for(self, task_id: str) -> tuple[str, Approval | None]:
        """The approval id for the request of task `task_id`, and the approval if a previous run of
        that task already made it. Derived from the task id, so a retried task finds its own
        approval instead of asking twice; an id another request holds is skipped (ids are short)."""
        for n in itertools.count():
            candidate = f"a-{hashlib.sha256(f'{task_id}:{n}'.encode()).hexdigest()[:6]}"
            existing = self.get(candidate)
            if existing is None or existing.subject.get("task") == task_id:
                return candidate, existing
        raise AssertionError("unreachable")

    @guarded
    def get(self, approval_id: str) -> Approval | None:
        raw = self._r.get(self._keys.approval(approval_id))
        return Approval.from_dict(json.loads(raw)) if raw else None

    @guarded
    def update(self, approval_id: str, change: ApprovalChange) -> Approval | None:
        """Apply `change` atomically; None when missing or unchanged."""

        def write(pipe: Any, approval: Approval, _old: Approval) -> None:
            self._write(pipe, approval)

        return update_watched(
            self._r,
            self._keys.approval(approval_id),
            lambda raw: Approval.from_dict(json.loads(raw)),
            change,
            write,
            self._effects,
        )

    @guarded
    def pending(self) -> list[Approval]:
        ids = self._r.zrange(self._keys.approvals_pending, 0, -1)
        raws = self._r.mget([self._keys.approval(i) for i in ids]) if ids else []
        return [Approval.from_dict(json.loads(raw)) for raw in raws if raw]

    @guarded
    def pending_count(self) -> int:
        return int(self._r.zcard(self._keys.approvals_pending))

    @guarded
    def recent(self, limit: int = 10) -> list[Approval]:
        ids = self._r.zrevrange(self._keys.approvals_recent, 0, limit - 1)
        raws = self._r.mget([self._keys.approval(i) for i in ids]) if ids else []
        return [Approval.from_dict(json.loads(raw)) for raw in raws if raw]

    def _write(self, pipe: Any, approval: Approval) -> None:
        key = self._keys.approval(approval.id)
        pipe.set(key, json.dumps(approval.to_dict()))
        if approval.state is ApprovalState.PENDING:
            pipe.zadd(self._keys.approvals_pending, {approval.id: approval.expires_at})
        else:
            pipe.expire(key, DECIDED_TTL_S)
            pipe.zrem(self._keys.approvals_pending, approval.id)
            pipe.zadd(self._keys.approvals_recent, {approval.id: approval.decided_at or approval.created_at})
            pipe.zremrangebyrank(self._keys.approvals_recent, 0, -RECENT_KEEP - 1)
