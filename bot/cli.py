"""`amibot run [--http] [--port N]`, `amibot work` and `amibot demo [--script FILE] [--prune-schedule
CRON]`."""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import signal
import sys
import tempfile
import threading
from collections.abc import Callable
from types import FrameType
from typing import TYPE_CHECKING
from urllib.error import URLError

from slack_sdk.errors import SlackApiError, SlackClientError

from bot.errors import ConfigError
from bot.worker import MULTIPROC_ENV

if TYPE_CHECKING:
    from bot.config import Settings

log = logging.getLogger("amibot")
# What slack_sdk raises when Slack refuses a call, or cannot be reached (after its retries).
_SLACK_FAILURES = (SlackClientError, URLError, TimeoutError)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="amibot", description="Slack ChatOps bot for Amazon Machine Images")
    sub = parser.add_subparsers(dest="cmd", required=True)
    run = sub.add_parser("run", help="run the bot (Socket Mode when SLACK_APP_TOKEN is set, else HTTP)")
    run.add_argument("--http", action="store_true", help="HTTP mode even when SLACK_APP_TOKEN is set")
    run.add_argument("--port", type=int, default=3000)
    run.add_argument("--host", default="0.0.0.0")
    run.add_argument("--threads", type=int, default=8, help="HTTP server threads")
    run.add_argument(
        "--single-process",
        action="store_true",
        help="do the background work in this process too (default: in a child process, `amibot work`)",
    )
    sub.add_parser("work", help="only the background work (AWS calls, tracking, notices); `run` starts it")
    demo = sub.add_parser("demo", help="the whole bot on this machine: Slack, AWS and Redis emulated")
    demo.add_argument("--script", help="play a file of /ami lines and clicks; exit non-zero if a step fails")
    demo.add_argument(
        "--prune-schedule",
        metavar="CRON",
        help='turn the prune schedule on, e.g. "0 3 * * *" (its Keep notice is posted 3 days ahead)',
    )
    args = parser.parse_args(argv)
    if args.cmd == "demo":
        from bot.demo.main import run_demo

        return run_demo(args.script, prune_schedule=args.prune_schedule)
    if args.cmd == "work":
        return _work()
    return _run(
        http=args.http, host=args.host, port=args.port, threads=args.threads, single=args.single_process
    )


def _settings(*, http: bool | None) -> tuple[Settings, bool] | None:
    """Settings (and whether HTTP mode), or None after printing one line per problem."""
    from bot import logs
    from bot.config import check_runnable, load_settings

    try:
        settings = load_settings()
        http_mode = bool(http) or settings.slack_app_token is None
        check_runnable(settings, http=http_mode if http is not None else False)
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"amibot: configuration: {problem}", file=sys.stderr)
        return None
    logs.configure(settings.amibot_log_level, settings.secret_values())
    return settings, http_mode


def _work() -> int:
    """The background work only (the child of `amibot run`, or a process of its own)."""
    from bot.worker import die_with_parent, lower_priority

    loaded = _settings(http=None)
    if loaded is None:
        return 2
    settings, _ = loaded
    die_with_parent()
    lower_priority(settings.amibot_worker_nice)
    from bot.app import build

    runtime = build(settings, verify_token=False)
    stop = threading.Event()
    _on_signals(stop.set)
    runtime.start_background()
    log.info("amibot background work started")
    try:
        stop.wait()
    finally:
        runtime.stop()
        log.info("amibot background work stopped")
    return 0


def _run(*, http: bool, host: str, port: int, threads: int, single: bool) -> int:
    loaded = _settings(http=http)
    if loaded is None:
        return 2
    settings, http = loaded
    metrics_dir = None
    if not single and MULTIPROC_ENV not in os.environ:  # before prometheus_client is imported
        metrics_dir = tempfile.mkdtemp(prefix="amibot-metrics-")
        os.environ[MULTIPROC_ENV] = metrics_dir
    try:
        return _serve(settings, http=http, host=host, port=port, threads=threads, single=single)
    finally:
        if metrics_dir:
            shutil.rmtree(metrics_dir, ignore_errors=True)


def _serve(settings: Settings, *, http: bool, host: str, port: int, threads: int, single: bool) -> int:
    from bot.app import build
    from bot.worker import WorkerProcess

    try:
        runtime = build(settings)
    except _SLACK_FAILURES as exc:
        print(f"amibot: Slack refused the bot token or could not be reached: {_why(exc)}", file=sys.stderr)
        return 2
    stop = threading.Event()
    worker = None
    if single:
        runtime.start_background()
    else:
        worker = WorkerProcess()
        worker.start()
    log.info(
        "amibot started", extra={"mode": "http" if http else "socket", "regions": list(settings.regions)}
    )
    try:
        if http:
            from bot.server import serve

            server = serve(runtime, host, port, threads=threads)

            def shut() -> None:
                stop.set()
                server.close()

            _on_signals(shut)
            log.info("listening", extra={"host": host, "port": server.effective_port})
            try:
                server.run()
            except (OSError, ValueError):
                if not stop.is_set():
                    raise
        else:
            from slack_bolt.adapter.socket_mode import SocketModeHandler

            assert settings.slack_app_token is not None
            handler = SocketModeHandler(runtime.bolt, settings.slack_app_token.get_secret_value())
            _on_signals(stop.set)
            try:
                handler.connect()  # the client reconnects by itself afterwards
            except _SLACK_FAILURES as exc:
                why = _why(exc)
                print(f"amibot: Socket Mode cannot connect ({why}); check SLACK_APP_TOKEN", file=sys.stderr)
                return 2
            stop.wait()
            handler.close()
    finally:
        if worker is not None:
            worker.stop()
        runtime.stop()
        log.info("amibot stopped")
    return 0


def _why(exc: BaseException) -> str:
    """Slack's error code, or why it could not be reached (never a token)."""
    if isinstance(exc, SlackApiError):
        return str(exc.response.get("error"))
    if isinstance(exc, URLError):
        return f"{type(exc).__name__}: {exc.reason}"
    return type(exc).__name__


def _on_signals(fn: Callable[[], None]) -> None:
    def handle(signum: int, frame: FrameType | None) -> None:
        fn()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)


if __name__ == "__main__":
    sys.exit(main())
