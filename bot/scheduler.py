"""Timing of recurring work: one in-memory APScheduler per process.

APScheduler job stores must never be shared between schedulers, so each replica keeps its
own; what must happen once across replicas is claimed in Redis by the work itself (leases
for the tracker, the outbox and work items; a per-tick claim for cron jobs).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from bot.errors import StoreUnavailable

log = logging.getLogger(__name__)


class Scheduler:
    def __init__(self) -> None:
        self._scheduler = BackgroundScheduler(
            timezone=UTC,
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 30},
        )

    def every(self, name: str, seconds: float, fn: Callable[[], object], *, first_in: float = 0.0) -> None:
        start = datetime.now(UTC).timestamp() + first_in
        self._scheduler.add_job(
            _safely(name, fn),
            IntervalTrigger(seconds=seconds, timezone=UTC, start_date=datetime.fromtimestamp(start, UTC)),
            id=name,
            name=name,
            next_run_time=datetime.fromtimestamp(start, UTC),
        )

    def cron(self, name: str, crontab: str, fn: Callable[[datetime], object]) -> None:
        """`fn` gets the scheduled fire time, the same on every replica (claim the tick with it)."""
        trigger = CronTrigger.from_crontab(crontab, timezone=UTC)

        def run() -> None:
            fn(last_fire(trigger, datetime.now(UTC)))

        self._scheduler.add_job(_safely(name, run), trigger, id=name, name=name, misfire_grace_time=50)

    def next_run(self, name: str) -> datetime | None:
        job = self._scheduler.get_job(name)
        return job.next_run_time if job is not None else None

    def wake(self, name: str) -> None:
        """Run `name` now instead of at its next interval (used to react at once to local work)."""
        job = self._scheduler.get_job(name)
        if job is not None and self._scheduler.running:
            job.modify(next_run_time=datetime.now(UTC))

    def start(self) -> None:
        self._scheduler.start()

    def shutdown(self) -> None:
        if self._scheduler.running:
            self._scheduler.shutdown(wait=True)


def last_fire(trigger: CronTrigger, now: datetime) -> datetime:
    """The scheduled time a run at `now` belongs to (the latest fire time within the last minute)."""
    last = None
    fire = trigger.get_next_fire_time(None, now - timedelta(seconds=60))
    while fire is not None and fire <= now:
        last = fire
        fire = trigger.get_next_fire_time(fire, fire + timedelta(seconds=1))
    return last or now.replace(second=0, microsecond=0)


def _safely(name: str, fn: Callable[[], object]) -> Callable[[], None]:
    def run() -> None:
        try:
            fn()
        except StoreUnavailable:
            log.warning("state store unavailable; %s skipped this tick", name)
        except Exception:
            log.exception("recurring job %s failed", name)

    run.__name__ = name
    return run
