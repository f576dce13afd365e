"""The background work in its own process.

`amibot run` answers Slack in one process and keeps the background work (AWS calls, tracking,
the outbox, approvals' sweeps, schedules) in a child, `amibot work`, so acks never wait behind
that work for Python's interpreter lock. All state is in Redis, so the two need nothing from
each other: wake-ups go through Redis pub/sub, and the child is just one more replica's worth
of background work under the same leases. The parent restarts the child if it dies, and the
child exits when its parent is gone.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import subprocess
import sys
import threading
import time

log = logging.getLogger(__name__)

PARENT_ENV = "AMIBOT_PARENT_PID"
# Where both processes write their metrics (prometheus_client's multiprocess mode; bot.metrics
# reads it). `amibot run` sets it before prometheus_client is imported.
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
PR_SET_PDEATHSIG = 1
MAX_RESTART_DELAY_S = 30.0
TRIM_AFTER_JOBS = 1000  # polls this large are worth returning their memory to the OS


class WorkerProcess:
    """The parent's handle on `amibot work`: start, restart on death, stop."""

    def __init__(self, argv: list[str] | None = None) -> None:
        self._argv = argv or [sys.executable, "-m", "bot", "work"]
        self._process: subprocess.Popen[bytes] | None = None
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._watcher: threading.Thread | None = None

    def start(self) -> None:
        self._spawn()
        self._watcher = threading.Thread(target=self._watch, name="amibot-worker-watch", daemon=True)
        self._watcher.start()

    def stop(self, timeout: float = 20.0) -> None:
        self._stopping.set()
        with self._lock:
            process = self._process
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def _spawn(self) -> None:
        env = {**os.environ, PARENT_ENV: str(os.getpid())}
        with self._lock:
            self._process = subprocess.Popen(self._argv, env=env, stdin=subprocess.DEVNULL)
        log.info("background worker started", extra={"pid": self._process.pid})

    def _watch(self) -> None:
        delay = 1.0
        while not self._stopping.is_set():
            with self._lock:
                process = self._process
            assert process is not None
            started = time.monotonic()
            code = process.wait()
            if self._stopping.is_set():
                return
            log.error("background worker exited; restarting", extra={"code": code, "delay_s": delay})
            if self._stopping.wait(delay):
                return
            delay = 1.0 if time.monotonic() - started > 60 else min(MAX_RESTART_DELAY_S, delay * 2)
            self._spawn()


def die_with_parent() -> None:
    """In the child: die when the parent is gone (Linux: the kernel tells us; elsewhere: we look)."""
    parent = int(os.environ.get(PARENT_ENV, "0") or 0)
    if not parent:
        return
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)

    def watch() -> None:  # the parent died without stopping us: end as abruptly as it did
        while True:
            if os.getppid() != parent:
                os.kill(os.getpid(), signal.SIGKILL)
                return
            time.sleep(1.0)

    threading.Thread(target=watch, name="amibot-parent-watch", daemon=True).start()


def lower_priority(nice: int) -> None:
    """In the child: yield the CPU to the process that acks Slack. The background work can wait a
    few milliseconds; an ack competing with it for the machine's cores cannot."""
    if nice and os.environ.get(PARENT_ENV):
        with contextlib.suppress(OSError, AttributeError):
            os.nice(nice)


def release_freed_memory() -> None:
    """Give memory freed by Python back to the OS (glibc keeps it in its arenas otherwise)."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None).malloc_trim(0)
