"""Workers: run the work that is due (AWS calls recorded on the ack path) under per-item leases.

Work items live in a Redis sorted set by due time (`job:<id>`, `task:<id>`). A replica takes
an item only with its lease, renews the lease while the work runs, and removes the item when
the handler says it is done (or re-schedules it). A replica that dies leaves its leases to
expire; another one then takes the item over. Handlers are idempotent for that reason.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor

from bot.errors import AmibotError, StoreUnavailable
from bot.store.leases import Leases
from bot.store.work import WorkStore

log = logging.getLogger(__name__)

# A handler gets the id after the prefix and returns None (done) or when to run again.
Handler = Callable[[str], float | None]

ERROR_RETRY_S = 30.0


class Runner:
    def __init__(
        self,
        work: WorkStore,
        leases: Leases,
        handlers: Mapping[str, Handler],
        *,
        workers: int,
        lease_s: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._work = work
        self._leases = leases
        self._handlers = handlers
        self._lease_s = lease_s
        self._clock = clock
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="amibot-worker")
        self._workers = workers
        self._lock = threading.Lock()
        self._running: dict[str, str] = {}  # work item -> lease token

    def run_due(self) -> int:
        """Claim due items (up to free workers) and start them; returns how many started."""
        with self._lock:
            free = self._workers - len(self._running)
        if free <= 0:
            return 0
        started = 0
        for member in self._work.due(self._clock(), limit=free * 4):
            if started >= free:
                break
            with self._lock:
                if member in self._running:
                    continue
            token = self._leases.acquire(f"work:{member}", self._lease_s)
            if token is None:
                continue  # another replica (or thread) has it
            with self._lock:
                self._running[member] = token
            self._pool.submit(self._run, member, token)
            started += 1
        return started

    def renew(self) -> None:
        """Heartbeat: keep the leases of running items (called every lease/3)."""
        with self._lock:
            running = dict(self._running)
        for member, token in running.items():
            try:
                self._leases.renew(f"work:{member}", token, self._lease_s)
            except StoreUnavailable:
                log.warning("could not renew a work lease", extra={"work": member})

    def busy(self) -> int:
        with self._lock:
            return len(self._running)

    def shutdown(self, wait: bool = True) -> None:
        self._pool.shutdown(wait=wait, cancel_futures=True)

    def _run(self, member: str, token: str) -> None:
        try:
            kind, _, ident = member.partition(":")
            handler = self._handlers.get(kind)
            if handler is None:
                log.error("no handler for work item", extra={"work": member})
                self._work.done(member)
                return
            try:
                again = handler(ident)
            except StoreUnavailable:
                log.warning("state store unavailable; work stays due", extra={"work": member})
                return
            except AmibotError as exc:
                log.warning("work failed; will retry", extra={"work": member, "error": exc.message})
                again = self._clock() + ERROR_RETRY_S
            except Exception:
                log.exception("work crashed; will retry", extra={"work": member})
                again = self._clock() + ERROR_RETRY_S
            if again is None:
                self._work.done(member)
            else:
                self._work.reschedule(member, again)
        except StoreUnavailable:
            log.warning("state store unavailable after work", extra={"work": member})
        finally:
            with self._lock:
                self._running.pop(member, None)
            with contextlib.suppress(StoreUnavailable):
                self._leases.release(f"work:{member}", token)
