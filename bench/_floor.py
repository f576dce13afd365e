"""The floor of the ack benchmark: a Bolt app whose `/ami` listener only acks, served the way
`amibot run --http` serves (waitress with the same settings and thread count, Bolt's WSGI adapter,
request signing verified, `process_before_response=True`, the token checked once at start).

    python -m bench._floor --port N --threads 8   (SLACK_SIGNING_SECRET, SLACK_API_URL, SLACK_BOT_TOKEN)
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
from collections.abc import Callable, Iterable
from typing import Any

from slack_bolt import Ack, App
from slack_bolt.adapter.wsgi import SlackRequestHandler
from slack_sdk import WebClient
from waitress.server import create_server


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--threads", type=int, default=8)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    app = App(
        client=WebClient(token=os.environ["SLACK_BOT_TOKEN"], base_url=os.environ["SLACK_API_URL"]),
        signing_secret=os.environ["SLACK_SIGNING_SECRET"],
        process_before_response=True,
    )

    @app.command("/ami")
    def ami(ack: Ack) -> None:
        ack("ok")

    bolt = SlackRequestHandler(app, path="/slack/events")

    def wsgi(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == "/healthz":
            start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "3")])
            return [b"ok\n"]
        return list(bolt(environ, start_response))

    # the same settings as bot.server.serve
    server: Any = create_server(
        wsgi,
        host=args.host,
        port=args.port,
        threads=args.threads,
        connection_limit=200,
        backlog=1024,
        channel_timeout=30,
        clear_untrusted_proxy_headers=True,
        ident="floor",
    )
    signal.signal(signal.SIGTERM, lambda *_: server.close())
    with contextlib.suppress(OSError, ValueError):  # closed by the signal
        server.run()


if __name__ == "__main__":
    main()
