"""HTTP mode: one WSGI app on waitress (a production-grade server, not Bolt's dev server).

`POST /slack/events` takes slash commands, interactivity and events (Bolt verifies the
signature and timestamp); `GET /healthz` is 200 when Redis answers, else 503;
`GET /metrics` serves Prometheus metrics. A request that cannot be parsed gets a 400.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Iterable
from typing import Any

from slack_bolt.adapter.wsgi import SlackRequestHandler
from waitress.server import create_server

from bot.app import Runtime

log = logging.getLogger(__name__)

EVENTS_PATH = "/slack/events"
MAX_BODY = 1_000_000  # Slack payloads are far smaller

StartResponse = Callable[..., Any]


class WsgiApp:
    def __init__(self, runtime: Runtime) -> None:
        self._bolt = SlackRequestHandler(runtime.bolt, path=EVENTS_PATH)
        self._services = runtime.services

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        method = environ.get("REQUEST_METHOD", "GET")
        if path == EVENTS_PATH:
            if method != "POST":
                return _plain(start_response, "405 Method Not Allowed", "use POST\n")
            return self._events(environ, start_response)
        if path == "/healthz" and method in ("GET", "HEAD"):
            if self._services.healthy():
                return _plain(start_response, "200 OK", "ok\n")
            return _plain(start_response, "503 Service Unavailable", "state store unavailable\n")
        if path == "/metrics" and method == "GET":
            body = self._services.metrics.render()
            start_response(
                "200 OK", [("Content-Type", "text/plain; version=0.0.4"), ("Content-Length", str(len(body)))]
            )
            return [body]
        return _plain(start_response, "404 Not Found", "not found\n")

    def _events(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        started = time.perf_counter()
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return _plain(start_response, "400 Bad Request", "bad content length\n")
        if length > MAX_BODY:
            return _plain(start_response, "413 Payload Too Large", "payload too large\n")
        try:
            result = list(self._bolt(environ, start_response))
        except Exception:
            log.warning("unparseable request", exc_info=True)
            return _plain(start_response, "400 Bad Request", "bad request\n", exc_info=True)
        finally:
            self._services.metrics.ack_seconds.labels("http").observe(time.perf_counter() - started)
        return result


def _plain(start_response: StartResponse, status: str, text: str, exc_info: bool = False) -> list[bytes]:
    body = text.encode()
    headers = [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))]
    if exc_info:
        start_response(status, headers, sys.exc_info())
    else:
        start_response(status, headers)
    return [body]


def serve(runtime: Runtime, host: str, port: int, *, threads: int = 8) -> Any:
    """A started-but-not-running waitress server; call `.run()` and `.close()`."""
    return create_server(
        WsgiApp(runtime),
        host=host,
        port=port,
        threads=threads,
        connection_limit=200,
        backlog=1024,
        channel_timeout=30,
        clear_untrusted_proxy_headers=True,
        ident="amibot",
    )
