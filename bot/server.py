"""HTTP mode: one WSGI app on waitress (a production-grade server, not Bolt's dev server).

`POST /slack/events` takes slash commands, interactivity and events (Bolt verifies the
signature and timestamp); `GET /healthz` is 200 when Redis answers, else 503;
`GET /metrics` serves Prometheus metrics. bot.request_guard checks the signature, replays
and the request's shape first (401/400); Bolt then dispatches it.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from http import HTTPStatus
from typing import Any

from slack_bolt.request import BoltRequest
from waitress.server import create_server

from bot.app import Runtime

log = logging.getLogger(__name__)

EVENTS_PATH = "/slack/events"
MAX_BODY = 1_000_000  # Slack payloads are far smaller

StartResponse = Callable[..., Any]


class WsgiApp:
    def __init__(self, runtime: Runtime) -> None:
        self._bolt = runtime.bolt
        self._services = runtime.services

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        method = environ.get("REQUEST_METHOD", "GET")
        if path == EVENTS_PATH:
            if method != "POST":
                return _plain(start_response, "405 Method Not Allowed", "use POST\n")
            started = time.perf_counter()
            try:
                return self._events(environ, start_response)
            finally:
                self._services.metrics.ack_seconds.labels("http").observe(time.perf_counter() - started)
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
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return _plain(start_response, "400 Bad Request", "bad content length\n")
        if length > MAX_BODY:
            return _plain(start_response, "413 Payload Too Large", "payload too large\n")
        try:
            body = environ["wsgi.input"].read(length).decode("utf-8")
        except (UnicodeDecodeError, OSError, KeyError):
            return _plain(start_response, "400 Bad Request", "bad body\n")
        headers = _headers(environ)
        refused = self._services.requests.problem(body, headers)
        if refused is not None:
            status, reason = refused
            log.info("request refused", extra={"status": status, "reason": reason})
            return _plain(start_response, f"{status} {HTTPStatus(status).phrase}", reason + "\n")
        try:
            response = self._bolt.dispatch(
                BoltRequest(body=body, query=environ.get("QUERY_STRING", ""), headers=_multi(headers))
            )
        except Exception:
            log.info("unparseable request", extra={"error": sys.exc_info()[0].__name__})  # type: ignore[union-attr]
            return _plain(start_response, "400 Bad Request", "bad request\n")
        payload = response.body.encode("utf-8")
        out = [
            (k, v) for k, v in response.first_headers_without_set_cookie().items() if k != "content-length"
        ]
        start_response(
            f"{response.status} {HTTPStatus(response.status).phrase}",
            [*out, ("Content-Length", str(len(payload)))],
        )
        return [payload]


def _multi(headers: Mapping[str, str]) -> dict[str, str | Sequence[str]]:
    return dict(headers)


def _headers(environ: Mapping[str, Any]) -> dict[str, str]:
    headers: dict[str, str] = {}
    for key, value in environ.items():
        if key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            headers[key.lower().replace("_", "-")] = str(value)
        elif key.startswith("HTTP_"):
            headers[key[5:].lower().replace("_", "-")] = str(value)
    return headers


def _plain(start_response: StartResponse, status: str, text: str) -> list[bytes]:
    body = text.encode()
    start_response(
        status, [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))]
    )
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
