"""What goes with a state change, written in the same Redis transaction: notices, work, audit.

Writing them together is what makes "acknowledged" mean "recorded" and a notice go out
exactly once: either the change and its notices are stored, or neither is.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import redis

from bot.keys import Keys
from bot.messages import OutboxItem
from bot.models import FINISHED, Job, JobState
from bot.store.wakeups import OUTBOX, WORK

log = logging.getLogger("amibot.audit")

SENT_TOMBSTONE_S = 7 * 24 * 3600
FINISHED_JOB_TTL_S = 30 * 24 * 3600
RECENT_KEEP = 1000  # an item id sent within a week is not sent again
AUDIT_MAXLEN = 100_000

_ENQUEUE = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX') then
  redis.call('RPUSH', KEYS[2], ARGV[2])
  redis.call('ZADD', KEYS[3], 'NX', ARGV[3], ARGV[4])
  return 1
end
return 0
"""


@dataclass(frozen=True)
class AuditEntry:
    actor: str  # Slack user id, or "amibot" for the bot's own actions
    action: str  # e.g. "create.requested", "image.available", "approval.approved"
    target: str  # job id, AMI id, approval id…
    result: str = "ok"
    detail: str = ""
    account: str = ""
    region: str = ""


@dataclass(frozen=True)
class Effects:
    notices: Sequence[OutboxItem] = ()
    work: Sequence[tuple[str, float]] = ()  # (work item, due time)
    audit: Sequence[AuditEntry] = ()
    unwork: Sequence[str] = ()  # work items no longer due
    jobs: Sequence[Job] = ()  # new jobs to store (e.g. the execution of an approved request)

    def __add__(self, other: Effects) -> Effects:
        return Effects(
            notices=(*self.notices, *other.notices),
            work=(*self.work, *other.work),
            audit=(*self.audit, *other.audit),
            unwork=(*self.unwork, *other.unwork),
            jobs=(*self.jobs, *other.jobs),
        )


class EffectWriter:
    """Queues the writes of Effects on a pipeline (inside MULTI); tells listeners once committed."""

    def __init__(
        self,
        client: Any,
        keys: Keys,
        *,
        on_notices: Callable[[], None] = lambda: None,
        on_work: Callable[[], None] = lambda: None,
    ) -> None:
        self._keys = keys
        self._enqueue = client.register_script(_ENQUEUE)
        self.on_notices = on_notices
        self.on_work = on_work

    def committed(self, effects: Effects) -> None:
        """Called after EXEC: log the audit entries, wake whoever delivers notices or runs work."""
        for entry in effects.audit:
            log.info("audit", extra={f"audit_{k}": v for k, v in entry.__dict__.items()})
        if effects.notices:
            self.on_notices()
        if effects.work or effects.jobs:
            self.on_work()

    def commit(self, client: Any, effects: Effects, *, also: Callable[[Any], None] | None = None) -> None:
        """One MULTI/EXEC with `also(pipe)`'s writes and the effects; then `committed`."""
        with client.pipeline(transaction=True) as pipe:
            if also is not None:
                also(pipe)
            self.write(pipe, effects)
            pipe.execute()
        self.committed(effects)

    def write(self, pipe: Any, effects: Effects, now: float | None = None) -> None:
        now = time.time() if now is None else now
        for job in effects.jobs:
            self.write_job(pipe, job, previous=None)
        for item in effects.notices:
            self.enqueue(pipe, item, now)
        for member, at in effects.work:
            pipe.zadd(self._keys.work_due, {member: at})
        for member in effects.unwork:
            pipe.zrem(self._keys.work_due, member)
        for entry in effects.audit:
            fields = {k: str(v) for k, v in entry.__dict__.items()}
            fields["time"] = f"{now:.3f}"
            pipe.xadd(self._keys.audit, fields, maxlen=AUDIT_MAXLEN, approximate=True)
        # wake the background work of every process (bot.store.wakeups), in the same transaction
        if effects.notices:
            pipe.publish(self._keys.wake, OUTBOX)
        if effects.work or effects.jobs:
            pipe.publish(self._keys.wake, WORK)

    def write_job(self, pipe: Any, job: Job, previous: Job | None) -> None:
        """A job document, and the index sets derived from its state when the state changes."""
        keys = self._keys
        key = keys.job(job.id)
        pipe.set(key, json.dumps(job.to_dict()))  # SET also clears an expiry
        if job.state in FINISHED:
            pipe.expire(key, FINISHED_JOB_TTL_S)
        if previous is not None and previous.state == job.state:
            return
        if previous is not None and previous.state not in FINISHED:
            pipe.hincrby(keys.job_counts, f"{job.kind}|{previous.state}", -1)
        pipe.hincrby(keys.job_counts, f"{job.kind}|{job.state}", 1)
        if job.state in FINISHED:
            pipe.zrem(keys.jobs_active, job.id)
            pipe.zrem(keys.user_jobs(job.requester), job.id)
            pipe.zadd(keys.jobs_recent, {job.id: job.finished_at or time.time()})
            pipe.zremrangebyrank(keys.jobs_recent, 0, -RECENT_KEEP - 1)
        elif previous is None or previous.state in FINISHED:
            pipe.zadd(keys.jobs_active, {job.id: job.created_at})
            pipe.zadd(keys.user_jobs(job.requester), {job.id: job.created_at})
            if previous is not None:
                pipe.zrem(keys.jobs_recent, job.id)
        if job.state is JobState.TRACKING:
            pipe.sadd(keys.jobs_tracking, job.id)
        elif previous is not None and previous.state is JobState.TRACKING:
            pipe.srem(keys.jobs_tracking, job.id)

    def enqueue(self, pipe: Any, item: OutboxItem, now: float) -> None:
        if not item.created_at:
            item = OutboxItem.from_dict({**item.to_dict(), "created_at": now})
        keys = [self._keys.outbox_item(item.id), self._keys.outbox_queue(item.dest), self._keys.outbox_dests]
        self._enqueue(keys=keys, args=[json.dumps(item.to_dict()), item.id, now, item.dest], client=pipe)


T = TypeVar("T")


def update_watched(
    client: Any,
    key: str,
    parse: Callable[[str], T],
    change: Callable[[T], tuple[T, Effects] | None],
    write: Callable[[Any, T, T], None],
    effects: EffectWriter,
) -> T | None:
    """The optimistic transaction every state change uses: WATCH the document, compute the change
    in Python, then write it (`write(pipe, new, old)`) and its effects in one MULTI/EXEC. A lost race
    re-reads and recomputes. Returns the new value, or None when missing or unchanged."""
    while True:
        with client.pipeline() as pipe:
            try:
                pipe.watch(key)
                raw = pipe.get(key)
                if not raw:
                    return None
                old = parse(raw)
                outcome = change(old)
                if outcome is None:
                    pipe.unwatch()
                    return None
                new, side = outcome
                pipe.multi()
                write(pipe, new, old)
                effects.write(pipe, side)
                pipe.execute()
            except redis.WatchError:
                continue
        effects.committed(side)
        return new
