"""The load generator of the ack benchmark, run in its own process (its own interpreter lock, so
the peers in the benchmark process do not slow the client down).

Reads a JSON spec on stdin: {"port", "clients", "requests": [{"body", "headers", "expect",
"kind"}, ...]} and sends the requests on `clients` keep-alive HTTP/1.1 connections (asyncio), each
client one request at a time. Writes JSON on stdout: per-request latency in ms (send → last byte
of the answer), all together and by the requests' `kind`; the HTTP statuses; failures; answers
without their `expect` text; the wall time.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections import Counter
from typing import Any

HOST = "127.0.0.1"


def raw_request(port: int, body: str, headers: dict[str, str]) -> bytes:
    data = body.encode()
    lines = ["POST /slack/events HTTP/1.1", f"Host: {HOST}:{port}", f"Content-Length: {len(data)}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + data


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
    head = await reader.readuntil(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    status = int(status_line.split(" ", 2)[1])
    headers = {}
    for line in header_lines:
        if ":" in line:
            key, _, value = line.partition(":")
            headers[key.strip().lower()] = value.strip()
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return status, body, headers.get("connection", "").lower() == "close"


async def run(spec: dict[str, Any]) -> dict[str, Any]:
    port = int(spec["port"])
    queue = [
        (raw_request(port, r["body"], r["headers"]), r.get("expect", ""), r.get("kind", ""))
        for r in spec["requests"]
    ]
    queue.reverse()  # pop() from the end: the first request first
    latencies: list[float] = []
    by_kind: dict[str, list[float]] = {}
    statuses: Counter[int] = Counter()
    failures: list[str] = []
    wrong: list[str] = []  # answers without the text they should hold

    async def client() -> None:
        reader, writer = await asyncio.open_connection(HOST, port)
        try:
            while queue:
                request, expect, kind = queue.pop()
                started = time.perf_counter()
                try:
                    writer.write(request)
                    status, body, close = await read_response(reader)
                except (OSError, asyncio.IncompleteReadError) as exc:
                    failures.append(repr(exc))
                    writer.close()
                    reader, writer = await asyncio.open_connection(HOST, port)
                    continue
                latency = (time.perf_counter() - started) * 1000
                latencies.append(latency)
                by_kind.setdefault(kind, []).append(latency)
                statuses[status] += 1
                if expect and expect.encode() not in body:
                    wrong.append(body.decode("utf-8", "replace")[:300])
                if close:
                    writer.close()
                    reader, writer = await asyncio.open_connection(HOST, port)
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(int(spec["clients"]))))
    return {
        "latencies_ms": latencies,
        "by_kind_ms": by_kind,
        "statuses": {str(k): v for k, v in statuses.items()},
        "failures": failures[:20],
        "failed": len(failures),
        "wall_s": time.perf_counter() - started,
        "wrong": len(wrong),
        "wrong_samples": wrong[:3],
    }


def main() -> None:
    spec = json.load(sys.stdin)
    json.dump(asyncio.run(run(spec)), sys.stdout)


if __name__ == "__main__":
    main()
