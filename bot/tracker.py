"""Batched tracking of in-flight images.

Each poll reads every tracking job from Redis, groups their pending images by account and
region, asks EC2 about up to 200 of them per DescribeImages call, and applies what it saw
through atomic job updates (a transition and its notices are written together, once).
One replica polls at a time: the poll runs only while this process holds the tracker lease.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from functools import partial
from typing import NamedTuple

from bot.aws.ec2 import Ec2
from bot.errors import AmibotError
from bot.images import Image
from bot.models import Job, JobKind, JobState, Target, TargetState
from bot.notices import copy_summary, image_notices
from bot.store.effects import AuditEntry, Effects
from bot.store.jobs import JobStore

log = logging.getLogger(__name__)

BATCH = 200
READ_CHUNK = 200  # jobs read from Redis at a time
FAILED_STATES = frozenset({"failed", "error", "invalid", "deregistered", "disabled"})


@dataclass(frozen=True)
class TrackPolicy:
    notfound_grace: float  # seconds to keep waiting for an image DescribeImages does not return yet
    notify_channel: str | None


@dataclass
class PollStats:
    jobs: int = 0
    images: int = 0
    calls: int = 0
    changes: int = 0
    errors: int = 0


def observe(
    job: Job, region: str, image: Image | None, now: float, policy: TrackPolicy
) -> tuple[Job, Effects] | None:
    """What one DescribeImages result means for one target (pure); None: nothing changes."""
    if job.state is not JobState.TRACKING:
        return None
    target = job.target(region)
    if target.state is not TargetState.PENDING:
        return None
    if image is None:  # not visible yet (eventual consistency), or gone
        if target.missing_since is not None and now - target.missing_since >= policy.notfound_grace:
            return _finish(
                job, target.to(TargetState.FAILED, finished_at=now, error="image not found"), now, policy
            )
        seen_missing = target if target.missing_since is not None else replace(target, missing_since=now)
        return _timeout(job, seen_missing, now, policy) or _unless_same(job, seen_missing)
    if image.state == "available":
        return _finish(
            job, target.to(TargetState.AVAILABLE, finished_at=now, missing_since=None), now, policy
        )
    if image.state in FAILED_STATES:
        reason = f"AWS reports the image as {image.state}"
        return _finish(job, target.to(TargetState.FAILED, finished_at=now, error=reason), now, policy)
    visible = replace(target, missing_since=None)
    return _timeout(job, visible, now, policy) or _unless_same(job, visible)


def _unless_same(job: Job, target: Target) -> tuple[Job, Effects] | None:
    return None if job.target(target.region) == target else (job.with_target(target), Effects())


def _timeout(job: Job, target: Target, now: float, policy: TrackPolicy) -> tuple[Job, Effects] | None:
    if now < job.deadline:
        return None
    return _finish(job, target.to(TargetState.TIMED_OUT, finished_at=now), now, policy)


def _finish(job: Job, target: Target, now: float, policy: TrackPolicy) -> tuple[Job, Effects]:
    job = job.with_target(target)
    effects = Effects(
        notices=image_notices(job, target, policy.notify_channel),
        audit=[
            AuditEntry(
                actor="amibot",
                action=f"image.{str(target.state).replace(' ', '_')}",
                target=target.image_id or job.id,
                result=target.error or "ok",
                detail=f"job {job.id}",
                account=job.account or "",
                region=target.region,
            )
        ],
    )
    if all(t.done for t in job.targets):
        job = job.to(_final_state(job.targets), finished_at=now)
        if job.kind is JobKind.COPY:  # one summary of every destination region
            effects += Effects(notices=copy_summary(job, policy.notify_channel))
    return job, effects


def finish_target(job: Job, target: Target, now: float, policy: TrackPolicy) -> tuple[Job, Effects]:
    """A target that ended before it was tracked (e.g. AWS refused its copy): the same notices,
    audit and job completion as one the tracker saw finish (pure)."""
    return _finish(job, target, now, policy)


def _final_state(targets: Iterable[Target]) -> JobState:
    states = {t.state for t in targets}
    if TargetState.FAILED in states:
        return JobState.FAILED
    if TargetState.TIMED_OUT in states:
        return JobState.TIMED_OUT
    return JobState.SUCCEEDED


def retrack(job: Job, now: float, max_wait: float) -> Job:
    """A "still pending" job watched again for another AMIBOT_MAX_WAIT (pure)."""
    targets = tuple(
        t.to(TargetState.PENDING, finished_at=None) if t.state is TargetState.TIMED_OUT else t
        for t in job.targets
    )
    return replace(job, targets=targets).to(JobState.TRACKING, deadline=now + max_wait, finished_at=None)


class Tracker:
    def __init__(
        self,
        jobs: JobStore,
        ec2: Ec2,
        policy: TrackPolicy,
        *,
        clock: Callable[[], float] = time.time,
        on_change: Callable[[], None] = lambda: None,
    ) -> None:
        self._jobs = jobs
        self._ec2 = ec2
        self._policy = policy
        self._clock = clock
        self._on_change = on_change

    def poll(self) -> PollStats:
        """One poll of every in-flight image. Jobs are read in chunks and only what is watched is
        kept (a small tuple per image), so memory stays flat with tens of thousands of jobs."""
        stats = PollStats()
        groups: dict[tuple[str | None, str], list[Watched]] = defaultdict(list)
        ids = self._jobs.tracking_ids()
        stats.jobs = len(ids)
        for start in range(0, len(ids), READ_CHUNK):
            for job in self._jobs.get_many(ids[start : start + READ_CHUNK]):
                for w in watched(job):
                    groups[(w.account, w.region)].append(w)
        for (account, region), pending in sorted(groups.items(), key=lambda kv: (kv[0][0] or "", kv[0][1])):
            for start in range(0, len(pending), BATCH):
                self._poll_chunk(account, region, pending[start : start + BATCH], stats)
        if stats.changes:
            self._on_change()
        return stats

    def _poll_chunk(self, account: str | None, region: str, chunk: list[Watched], stats: PollStats) -> None:
        ids = sorted({w.image_id for w in chunk})
        stats.images += len(ids)
        stats.calls += 1
        try:
            seen = self._ec2.images(account, region, ids)
        except AmibotError as exc:
            stats.errors += 1
            log.warning(
                "tracker poll failed", extra={"region": region, "account": account, "error": exc.message}
            )
            return
        now = self._clock()
        for w in chunk:
            image = seen.get(w.image_id)
            if quiet(w, image, now):
                continue  # still pending, seen, in time: nothing to write, skip the transaction
            change = partial(observe, region=w.region, image=image, now=now, policy=self._policy)
            updated = self._jobs.update(w.job_id, change)
            if updated is not None:
                stats.changes += 1
                if updated.finished:
                    log.info("job finished", extra={"job": updated.id, "state": str(updated.state)})


class Watched(NamedTuple):
    """One in-flight image, as much of its job as a poll needs."""

    job_id: str
    account: str | None
    region: str
    image_id: str
    missing_since: float | None
    deadline: float


def watched(job: Job) -> list[Watched]:
    if job.state is not JobState.TRACKING:
        return []
    return [
        Watched(job.id, job.account, t.region, t.image_id, t.missing_since, job.deadline)
        for t in job.targets
        if t.state is TargetState.PENDING and t.image_id
    ]


def quiet(w: Watched, image: Image | None, now: float) -> bool:
    """True when `observe` would change nothing: the image is seen, still pending, in time (pure)."""
    return (
        image is not None
        and image.state != "available"
        and image.state not in FAILED_STATES
        and w.missing_since is None
        and now < w.deadline
    )
