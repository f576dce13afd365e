"""Timing of recurring work: one in-memory APScheduler per process.

APScheduler job stores must never be shared between schedulers, so each replica keeps its
own; what must happen once across replicas is claimed in Redis by the work itself (leases
for the tracker, the outbox and work items; a per-tick claim for cron jobs).
"""

from __future__ import annotations

import logging
import queue
import threading
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
        # Wake-ups are applied by a thread of their own: APScheduler's shutdown holds its job store
        # lock while it waits for running jobs, so a job that woke another job directly would
        # deadlock the shutdown.
        self._wakes: queue.SimpleQueue[str | None] = queue.SimpleQueue()
        self._waker: threading.Thread | None = None

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
        trigger = cron_trigger(crontab)

        def run() -> None:
            fn(last_fire(trigger, datetime.now(UTC)))

        self._scheduler.add_job(_safely(name, run), trigger, id=name, name=name, misfire_grace_time=50)

    def next_run(self, name: str) -> datetime | None:
        job = self._scheduler.get_job(name)
        return job.next_run_time if job is not None else None

    def wake(self, name: str) -> None:
        """Run `name` now instead of at its next interval (never blocks: see `_apply_wakes`)."""
        self._wakes.put(name)

    def _apply_wakes(self) -> None:
        while (name := self._wakes.get()) is not None:
            try:
                job = self._scheduler.get_job(name)
                if job is not None and self._scheduler.running:
                    job.modify(next_run_time=datetime.now(UTC))
            except Exception:  # the scheduler stopped meanwhile, or the job finished: nothing to do
                log.debug("wake-up of %s skipped", name, exc_info=True)

    def start(self) -> None:
        self._scheduler.start()
        self._waker = threading.Thread(target=self._apply_wakes, name="amibot-waker", daemon=True)
        self._waker.start()

    def shutdown(self) -> None:
        if self._scheduler.running:
            self._scheduler.shutdown(wait=True)
        if self._waker is not None:
            self._wakes.put(None)
            self._waker.join(timeout=5)
            self._waker = None


_CRON_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


def cron_trigger(crontab: str) -> CronTrigger:
    """A standard 5-field crontab, in UTC, as an APScheduler trigger (ValueError if it is not one).

    Not `CronTrigger.from_crontab`: APScheduler 3 numbers the days of the week from Monday
    (0 = mon), cron from Sunday (0 and 7 = sun), so `from_crontab("0 6 * * 1")` fires on
    Tuesdays. Numeric days are turned into day names first. Cron fires when *either* restricted
    day field matches, APScheduler when both do, so restricting both is refused.
    """
    fields = crontab.split()
    if len(fields) != 5:
        raise ValueError(f"wrong number of fields; got {len(fields)}, expected 5")
    minute, hour, day, month, weekdays = fields
    if day not in ("*", "?") and weekdays not in ("*", "?"):
        raise ValueError("restrict the day of the month or the day of the week, not both")
    return CronTrigger(
        minute=minute, hour=hour, day=day, month=month, day_of_week=_cron_days(weekdays), timezone=UTC
    )


def _cron_days(text: str) -> str:
    """Cron's day-of-week field (`1`, `1-5`, `*/2`, `0,6`, `mon-fri`, 7 = sun) as day names."""
    if text in ("*", "?"):
        return "*"
    days: set[int] = set()
    for part in text.lower().split(","):
        spec, slash, step_text = part.partition("/")
        step = int(step_text) if step_text.isdigit() and int(step_text) > 0 else None
        if slash and step is None:
            raise ValueError(f"bad step in day of week {part!r}")
        if spec == "*":
            low, high = 0, 6
        elif "-" in spec:
            first, _, last = spec.partition("-")
            low, high = _cron_day(first), _cron_day(last)
        else:
            low = _cron_day(spec)
            high = 6 if slash else low
        if low > high:
            raise ValueError(f"day of week range {part!r} runs backwards")
        days.update(day % 7 for day in range(low, high + 1, step or 1))
    return ",".join(_CRON_DAYS[day] for day in sorted(days))


def _cron_day(text: str) -> int:
    if text in _CRON_DAYS:
        return _CRON_DAYS.index(text)
    if text.isdigit() and int(text) <= 7:
        return int(text)
    raise ValueError(f"bad day of week {text!r} (0-7 or sun-sat)")


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
