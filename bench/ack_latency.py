"""Ack latency in HTTP mode: the real `amibot run --http` next to a trivial Bolt app that only acks.

Peers: a real redis-server, the moto server (in this process), the fake Slack Web API. A load
generator in its own process sends signed `/ami status` and `/ami create <instance>` (alternating,
50/50) on keep-alive connections: 50 concurrent clients x 2,000 requests, then 1 client x 500
requests, to amibot and to the floor in turn, for several rounds; figures are medians over the
rounds. Then the same with every AWS call delayed by 2 s (a delaying proxy in front of moto).

    python -m bench.ack_latency [--rounds 3] [--requests 2000] [--single 500] [--clients 50]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from bench._common import (
    BOT_TOKEN,
    PY,
    ROOT,
    SECRET,
    DelayProxy,
    Peers,
    Process,
    bot_env,
    bot_process,
    free_port,
    median,
    pct,
    peers,
    section,
    signed_headers,
    table,
    verdict,
    write_section,
)

NAME = "ack_latency"
AWS_DELAY_S = 2.0


@dataclass
class Run:
    """One load run against one server."""

    latencies: list[float]
    wall_s: float
    failed: int
    unexpected: int

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.wall_s if self.wall_s else 0.0


@dataclass
class Series:
    runs: list[Run] = field(default_factory=list)

    def stat(self, q: float) -> float:
        return median([pct(r.latencies, q) for r in self.runs])

    @property
    def rate(self) -> float:
        return median([r.rate for r in self.runs])

    @property
    def errors(self) -> int:
        return sum(r.failed + r.unexpected for r in self.runs)


def command_body(text: str, response_url: str, n: int) -> str:
    return urlencode(
        {
            "token": "legacy-verification-token",
            "team_id": "T0001",
            "team_domain": "example",
            "channel_id": "CGENERAL",
            "channel_name": "general",
            "user_id": "UASKER",
            "user_name": "asker",
            "command": "/ami",
            "text": text,
            "api_app_id": "A0FAKESLACK",
            "is_enterprise_install": "false",
            "response_url": response_url,
            "trigger_id": f"1700000000.{n}.{uuid.uuid4().hex}",
        }
    )


def requests(p: Peers, instance: str, count: int, *, floor: bool) -> list[dict[str, Any]]:
    """Signed slash commands, status and create alternating; each with its own response URL."""
    out = []
    for n in range(count):
        create = n % 2 == 1
        text = f"create {instance}" if create else "status"
        body = command_body(text, p.slack.new_response_url(), n)
        expect = "ok" if floor else ("Job `j-" if create else "In-flight jobs")
        out.append({"body": body, "headers": signed_headers(body.encode()), "expect": expect})
    return out


def load(port: int, reqs: Sequence[dict[str, Any]], clients: int) -> Run:
    spec = {"port": port, "clients": clients, "requests": list(reqs)}
    done = subprocess.run(
        [PY, "-m", "bench._loadgen"],
        input=json.dumps(spec),
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
    )
    result = json.loads(done.stdout)
    statuses = result["statuses"]
    bad_status = sum(v for k, v in statuses.items() if k != "200")
    if result["failed"] or bad_status:
        print(f"  ! {result['failed']} failed, statuses {statuses}: {result['failures'][:3]}")
    if result["wrong"]:
        print(f"  ! {result['wrong']} unexpected answers, e.g. {result['wrong_samples']}")
    return Run(result["latencies_ms"], result["wall_s"], result["failed"], bad_status + result["wrong"])


def floor_process(p: Peers) -> Process:
    port = free_port()
    env = {
        "PATH": "/usr/bin:/bin",
        "SLACK_SIGNING_SECRET": SECRET,
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_API_URL": p.slack.api_url,
        "PYTHONUNBUFFERED": "1",
    }
    argv = [PY, "-m", "bench._floor", "--port", str(port), "--threads", "8"]
    return Process("floor", argv, env, ROOT, port, p.workdir / "floor.log")


def measure(
    p: Peers, bot: Process, floor: Process, instance: str, args: argparse.Namespace
) -> dict[tuple[str, int], Series]:
    """Rounds of: 50 clients to each server, then 1 client to each (the order flips every round)."""
    series: dict[tuple[str, int], Series] = {}
    servers = {"amibot": bot, "floor": floor}
    for name, proc in servers.items():  # warm up: imports, connections, caches
        load(proc.port, requests(p, instance, 200, floor=name == "floor"), args.clients)
    for rnd in range(args.rounds):
        order = list(servers.items()) if rnd % 2 == 0 else list(servers.items())[::-1]
        for clients, count in ((args.clients, args.requests), (1, args.single)):
            for name, proc in order:
                run = load(proc.port, requests(p, instance, count, floor=name == "floor"), clients)
                series.setdefault((name, clients), Series()).runs.append(run)
                print(
                    f"  round {rnd + 1} {name:6} {clients:2} clients: p50 {pct(run.latencies, 50):6.2f} "
                    f"p99 {pct(run.latencies, 99):6.2f} ms, {run.rate:5.0f} req/s"
                )
    return series


def main(argv: list[str] | None = None) -> bool:
    parser = argparse.ArgumentParser(prog="python -m bench.ack_latency")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--single", type=int, default=500)
    parser.add_argument("--clients", type=int, default=50)
    args = parser.parse_args(argv)

    results: dict[str, dict[tuple[str, int], Series]] = {}
    notes: dict[str, str] = {}
    with peers() as p:
        instance = p.moto.client("ec2").run_instances(ImageId="ami-12345678", MinCount=1, MaxCount=1)[
            "Instances"
        ][0]["InstanceId"]
        floor = floor_process(p).start(health="/healthz")
        try:
            with DelayProxy(p.moto.port, AWS_DELAY_S) as proxy:
                for condition, endpoint in (
                    ("AWS direct", p.moto.url),
                    (f"AWS +{AWS_DELAY_S:g} s", proxy.url),
                ):
                    print(f"{condition}:")
                    prefix = f"bench-ack:{uuid.uuid4().hex[:6]}:"
                    bot = bot_process(
                        p, f"amibot-{len(results)}", bot_env(p, prefix, aws_endpoint_url=endpoint)
                    )
                    bot.start()
                    before = proxy.requests
                    try:
                        results[condition] = measure(p, bot, floor, instance, args)
                        redis = p.redis.client()
                        notes[condition] = (
                            f"{redis.scard(prefix + 'jobs:active')} jobs in flight and "
                            f"{redis.zcard(prefix + 'work:due')} work items due at the end"
                            + (
                                f"; {proxy.requests - before} AWS calls went through the proxy"
                                if endpoint == proxy.url
                                else ""
                            )
                        )
                    finally:
                        bot.stop()
        finally:
            floor.stop()
    return report(results, notes, args)


def report(
    results: dict[str, dict[tuple[str, int], Series]], notes: dict[str, str], args: argparse.Namespace
) -> bool:
    rows = []
    checks = []
    for condition, series in results.items():
        for clients in (args.clients, 1):
            bot, floor = series[("amibot", clients)], series[("floor", clients)]
            for name, s in (("amibot", bot), ("floor (Bolt, ack only)", floor)):
                count = args.requests if clients > 1 else args.single
                rows.append(
                    [condition, name, clients, count, s.stat(50), s.stat(95), s.stat(99), s.rate, s.errors]
                )
            ratio99 = bot.stat(99) / floor.stat(99)
            ratio50 = bot.stat(50) / floor.stat(50)
            rows.append(
                [
                    condition,
                    "ratio amibot / floor",
                    clients,
                    "",
                    f"{ratio50:.2f}×",
                    "",
                    f"{ratio99:.2f}×",
                    "",
                    "",
                ]
            )
            if clients > 1:
                checks.append(
                    (f"{condition}, {clients} clients: p99 {bot.stat(99):.1f} ms < 50 ms", bot.stat(99) < 50)
                )
                checks.append(
                    (
                        f"{condition}, {clients} clients: p99 within 2× of the floor ({ratio99:.2f}×)",
                        ratio99 <= 2,
                    )
                )
            else:
                checks.append((f"{condition}, 1 client: p99 {bot.stat(99):.2f} ms < 5 ms", bot.stat(99) < 5))
            checks.append((f"{condition}, {clients} clients: no failed or wrong answers", bot.errors == 0))
    headers = [
        "condition",
        "server",
        "clients",
        "requests/round",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "req/s",
        "errors",
    ]
    tbl = table(headers, rows)
    print()
    print(tbl)
    for text, ok in checks:
        print(f"{'pass' if ok else 'MISS'}: {text}")
    body = "\n".join(
        [
            "**Result**",
            "",
            *(f"- {verdict(ok)} {text}" for text, ok in checks),
            "",
            f"Medians over {args.rounds} rounds (each figure is the median of the rounds' percentiles).",
            "",
            tbl,
            "",
            "**How it was measured**",
            "",
            "- `amibot run --http` as a real process (defaults: 8 waitress threads, AMIBOT_WORKERS 4, "
            "poll interval 15 s) against a real redis-server, the moto server and the fake Slack.",
            '- The floor: a Bolt app whose `/ami` listener only calls `ack("ok")` '
            "(`process_before_response=True`), on waitress with the same settings and thread count, "
            "signature checked the same way (`bench/_floor.py`), running during the same run.",
            f"- Load: `bench/_loadgen.py` in its own process, asyncio, keep-alive HTTP/1.1; {args.clients} "
            f"clients share {args.requests} requests, each client one at a time; then 1 client, "
            f"{args.single} requests. Latency is client-side, from sending the request to the last byte "
            "of the answer. Requests alternate `/ami status` and `/ami create <instance>` (a real moto "
            "instance), signed with the signing secret, each with its own response URL. The servers take "
            "turns (the order flips every round) after a warm-up of 200 requests each.",
            f"- Slow AWS: a proxy in front of moto sleeps {AWS_DELAY_S:g} s before forwarding each request; "
            "the bot's AWS_ENDPOINT_URL points at it, so each create's DescribeInstances + CreateImage "
            "(made by the workers) takes ≥ 4 s.",
            *(f"- {c}: {n}." for c, n in notes.items()),
            "- The machine has 2 cores shared by the load generator, the server under test, moto, Redis and "
            "the fake Slack, and other sessions may run tests at the same time: compare ratios within "
            "a run rather than absolute figures across runs.",
        ]
    )
    write_section(
        NAME,
        section(
            "Ack latency (HTTP mode)",
            "python -m bench.ack_latency",
            [
                "p99 < 50 ms at 50 concurrent clients, with AWS answering at once and with every AWS call taking 2 s",
                "p99 within 2× of a trivial Bolt app that only acks, served the same way, same run",
                "p99 < 5 ms for a single client",
            ],
            body,
        ),
    )
    return all(ok for _, ok in checks)


if __name__ == "__main__":
    main()
