"""Jobs in Redis: one JSON document per job plus index sets derived from its state.

Every change goes through `update()`: WATCH the job, compute the change in Python, then
write the job, its index moves and its effects (notices, work, audit) in one MULTI/EXEC.
A lost race re-reads and recomputes, so a transition (and its notice) happens once.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Any

from bot.keys import Keys
from bot.models import Job
from bot.store import guarded
from bot.store.effects import Effects, EffectWriter, update_watched

Change = Callable[[Job], tuple[Job, Effects] | None]


RESERVE_S = 60


class JobExists(Exception):
    pass


class JobStore:
    def __init__(self, client: Any, keys: Keys, effects: EffectWriter) -> None:
        self._r = client
        self._keys = keys
        self._effects = effects

    @guarded
    def create(self, job: Job, effects: Effects | None = None) -> None:
        """Store a new job with its effects; JobExists if the id is taken.

        Two round trips (the ack path's budget): reserve the id with SET NX (expiring, so a crash
        right after leaves nothing behind), then write the job and its effects in one MULTI/EXEC.
        """
        key = self._keys.job(job.id)
        if not self._r.set(key, "{}", nx=True, ex=RESERVE_S):
            raise JobExists(job.id)
        self._effects.commit(
            self._r, effects or Effects(), also=lambda pipe: self._effects.write_job(pipe, job, None)
        )

    @guarded
    def get(self, job_id: str) -> Job | None:
        raw = self._r.get(self._keys.job(job_id))
        return Job.from_dict(json.loads(raw)) if raw else None

    @guarded
    def get_many(self, job_ids: Iterable[str], chunk: int = 500) -> list[Job]:
        ids = list(job_ids)
        jobs: list[Job] = []
        for start in range(0, len(ids), chunk):
            raws = self._r.mget([self._keys.job(i) for i in ids[start : start + chunk]])
            jobs.extend(Job.from_dict(json.loads(raw)) for raw in raws if raw)
        return jobs

    @guarded
    def update(self, job_id: str, change: Change) -> Job | None:
        """Apply `change` atomically: it returns (new job, effects), or None for "no change".

        Returns the stored job after the change, or None when the job is missing or unchanged.
        """

        def touched(job: Job) -> tuple[Job, Effects] | None:
            outcome = change(job)
            return None if outcome is None else (replace(outcome[0], updated_at=time.time()), outcome[1])

        def write(pipe: Any, job: Job, previous: Job) -> None:
            self._effects.write_job(pipe, job, previous)

        return update_watched(self._r, self._keys.job(job_id), _parse, touched, write, self._effects)

    @guarded
    def tracking_ids(self) -> list[str]:
        return sorted(self._r.smembers(self._keys.jobs_tracking))

    @guarded
    def active(self, limit: int = 20, user: str | None = None) -> list[Job]:
        """The newest unfinished jobs (of `user`, if given), newest first. Reads only what it shows."""
        key = self._keys.user_jobs(user) if user else self._keys.jobs_active
        return self.get_many(self._r.zrevrange(key, 0, limit - 1))

    @guarded
    def active_count(self) -> int:
        return int(self._r.zcard(self._keys.jobs_active))

    @guarded
    def counts(self) -> dict[tuple[str, ...], float]:
        raw = self._r.hgetall(self._keys.job_counts)
        counts: dict[tuple[str, ...], float] = {}
        for name, value in raw.items():
            kind, _, state = name.partition("|")
            counts[(kind, state)] = float(value)
        return counts

    @guarded
    def recent(self, limit: int = 20) -> list[Job]:
        ids = self._r.zrevrange(self._keys.jobs_recent, 0, limit - 1)
        return self.get_many(ids)


def _parse(raw: str) -> Job:
    return Job.from_dict(json.loads(raw))
