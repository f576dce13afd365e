"""`amibot run [--http] [--port N]` and `amibot demo [--script FILE]`."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Callable
from types import FrameType
from urllib.error import URLError

from slack_sdk.errors import SlackApiError, SlackClientError

from bot.errors import ConfigError

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
    demo = sub.add_parser("demo", help="the whole bot on this machine: Slack, AWS and Redis emulated")
    demo.add_argument("--script", help="play a file of /ami lines and clicks; exit non-zero if a step fails")
    args = parser.parse_args(argv)
    if args.cmd == "demo":
        from bot.demo.main import run_demo

        return run_demo(args.script)
    return _run(http=args.http, host=args.host, port=args.port, threads=args.threads)


def _run(*, http: bool, host: str, port: int, threads: int) -> int:
    from bot import logs
    from bot.config import check_runnable, load_settings

    try:
        settings = load_settings()
        http = http or settings.slack_app_token is None
        check_runnable(settings, http=http)
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"amibot: configuration: {problem}", file=sys.stderr)
        return 2
    logs.configure(settings.amibot_log_level, settings.secret_values())

    from bot.app import build

    try:
        runtime = build(settings)
    except _SLACK_FAILURES as exc:
        print(f"amibot: Slack refused the bot token or could not be reached: {_why(exc)}", file=sys.stderr)
        return 2
    stop = threading.Event()
    runtime.start_background()
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
