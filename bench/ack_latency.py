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
import re
import shutil
import signal
import subprocess
import time
import uuid
from collections import Counter
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
    by_kind: dict[str, list[float]]
    wall_s: float
    failed: int
    unexpected: int
    active: int = 0  # amibot's in-flight jobs after the run

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.wall_s if self.wall_s else 0.0


@dataclass
class Series:
    runs: list[Run] = field(default_factory=list)

    def stat(self, q: float, kind: str | None = None) -> float:
        return median([pct(r.by_kind.get(kind, []) if kind else r.latencies, q) for r in self.runs])

    @property
    def active(self) -> str:
        return "–".join(str(n) for n in sorted({r.active for r in self.runs}))

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
        kind = "create" if create else "status"
        out.append({"body": body, "headers": signed_headers(body.encode()), "expect": expect, "kind": kind})
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
    return Run(
        result["latencies_ms"],
        result["by_kind_ms"],
        result["wall_s"],
        result["failed"],
        bad_status + result["wrong"],
    )


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
    p: Peers, bot: Process, floor: Process, prefix: str, instance: str, args: argparse.Namespace
) -> dict[tuple[str, int], Series]:
    """Rounds of: 50 clients to each server, then 1 client to each (the order flips every round)."""
    series: dict[tuple[str, int], Series] = {}
    servers = {"amibot": bot, "floor": floor}
    redis = p.redis.client()
    for name, proc in servers.items():  # warm up: imports, connections, caches
        load(proc.port, requests(p, instance, 200, floor=name == "floor"), args.clients)
    for rnd in range(args.rounds):
        order = list(servers.items()) if rnd % 2 == 0 else list(servers.items())[::-1]
        for clients, count in ((args.clients, args.requests), (1, args.single)):
            for name, proc in order:
                run = load(proc.port, requests(p, instance, count, floor=name == "floor"), clients)
                if name == "amibot":
                    run.active = int(redis.scard(prefix + "jobs:active"))
                series.setdefault((name, clients), Series()).runs.append(run)
                print(
                    f"  round {rnd + 1} {name:6} {clients:2} clients: p50 {pct(run.latencies, 50):7.2f} "
                    f"p99 {pct(run.latencies, 99):7.2f} ms, {run.rate:5.0f} req/s"
                    + (f", {run.active} jobs in flight" if name == "amibot" else "")
                )
    return series


# --- an optional profile of the bot under the 50-client load (py-spy, if installed) ------------------

THREAD_GROUPS = (
    ("waitress", "HTTP threads (the ack path)"),
    ("amibot-worker", "workers (AWS calls)"),
    ("ThreadPoolExecutor", "scheduled jobs (tracker, outbox, work loop)"),
    ("APScheduler", "scheduler"),
    ("MainThread", "waitress I/O loop"),
)


def profile(py_spy: str, p: Peers, bot: Process, instance: str, args: argparse.Namespace) -> dict[str, Any]:
    """`py-spy record --gil` of the bot during one more 50-client run: who holds the interpreter lock,
    and which of amibot's functions the ack path holds it in."""
    out = p.workdir / f"py-spy-{bot.pid}.txt"
    argv = [
        py_spy,
        "record",
        "--pid",
        str(bot.pid),
        "--gil",
        "--threads",
        "-r",
        "200",
        "-f",
        "raw",
        "-o",
        str(out),
    ]
    spy = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.0)  # attached
    started = time.perf_counter()
    run = load(bot.port, requests(p, instance, args.requests, floor=False), args.clients)
    seconds = time.perf_counter() - started
    spy.send_signal(signal.SIGINT)  # py-spy writes its file when interrupted
    spy.wait(timeout=60)
    groups: Counter[str] = Counter()
    frames: Counter[str] = Counter()
    ack_samples = total = 0
    for line in out.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        n = int(count)
        thread, *calls = stack.split(";")
        total += n
        group = next((label for key, label in THREAD_GROUPS if key in thread), "other")
        groups[group] += n
        if group != THREAD_GROUPS[0][1]:
            continue
        ack_samples += n
        seen = set()
        for call in calls:
            match = re.match(r"(.+?) \((?:.*/)?((?:bot|handlers)/[\w/]+\.py)", call)
            if match and match.group(0) not in seen:
                seen.add(match.group(0))
                frames[f"{match.group(1)} ({match.group(2)})"] += n
    return {
        "seconds": seconds,
        "samples": total,
        "rate": 200,
        "groups": groups,
        "ack_samples": ack_samples,
        "frames": frames,
        "p99": pct(run.latencies, 99),
        "active": int(p.redis.client().scard(bot.env["AMIBOT_KEY_PREFIX"] + "jobs:active")),
    }


def main(argv: list[str] | None = None) -> bool:
    parser = argparse.ArgumentParser(prog="python -m bench.ack_latency")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--single", type=int, default=500)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument(
        "--py-spy",
        default=shutil.which("py-spy"),
        help="py-spy binary: profile the bot in one more 50-client run per condition (default: on PATH)",
    )
    parser.add_argument("--no-profile", action="store_true")
    args = parser.parse_args(argv)
    py_spy = None if args.no_profile else args.py_spy

    results: dict[str, dict[tuple[str, int], Series]] = {}
    profiles: dict[str, dict[str, Any]] = {}
    notes: dict[str, str] = {}
    with peers() as p:
        ec2 = p.moto.client("ec2")
        instance = ec2.run_instances(ImageId="ami-12345678", MinCount=1, MaxCount=1)["Instances"][0][
            "InstanceId"
        ]
        floor = floor_process(p).start(health="/healthz")
        try:
            with DelayProxy(p.moto.port, AWS_DELAY_S) as proxy:
                for condition, endpoint in (
                    ("AWS direct", p.moto.url),
                    (f"AWS +{AWS_DELAY_S:g} s", proxy.url),
                ):
                    print(f"{condition}:")
                    prefix = f"bench-ack:{uuid.uuid4().hex[:6]}:"
                    env = bot_env(p, prefix, aws_endpoint_url=endpoint)
                    bot = bot_process(p, f"amibot-{len(results)}", env).start()
                    before = proxy.requests
                    try:
                        results[condition] = measure(p, bot, floor, prefix, instance, args)
                        due = p.redis.client().zcard(prefix + "work:due")
                        notes[condition] = f"{due} work items were due when the rounds ended" + (
                            f"; {proxy.requests - before} AWS calls went through the proxy"
                            if endpoint == proxy.url
                            else ""
                        )
                        if py_spy:
                            profiles[condition] = profile(py_spy, p, bot, instance, args)
                    finally:
                        bot.stop()
        finally:
            floor.stop()
    return report(results, profiles, notes, args)


def report(
    results: dict[str, dict[tuple[str, int], Series]],
    profiles: dict[str, dict[str, Any]],
    notes: dict[str, str],
    args: argparse.Namespace,
) -> bool:
    rows = []
    checks = []
    for condition, series in results.items():
        for clients in (args.clients, 1):
            bot, floor = series[("amibot", clients)], series[("floor", clients)]
            count = args.requests if clients > 1 else args.single
            for name, s in (("amibot", bot), ("floor (Bolt, ack only)", floor)):
                by_kind = name == "amibot"
                rows.append(
                    [
                        condition,
                        name,
                        clients,
                        count,
                        s.stat(50),
                        s.stat(95),
                        s.stat(99),
                        s.stat(99, "status") if by_kind else "",
                        s.stat(99, "create") if by_kind else "",
                        s.rate,
                        s.active if by_kind else "",
                        s.errors,
                    ]
                )
            ratio99 = bot.stat(99) / floor.stat(99)
            ratio50 = bot.stat(50) / floor.stat(50)
            rows.append(
                [condition, "ratio amibot / floor", clients, "", f"{ratio50:.1f}×", "", f"{ratio99:.1f}×"]
                + [""] * 5
            )
            if clients > 1:
                checks.append(
                    (f"{condition}, {clients} clients: p99 {bot.stat(99):.1f} ms < 50 ms", bot.stat(99) < 50)
                )
                checks.append(
                    (
                        f"{condition}, {clients} clients: p99 within 2× of the floor ({ratio99:.1f}×)",
                        ratio99 <= 2,
                    )
                )
            else:
                checks.append((f"{condition}, 1 client: p99 {bot.stat(99):.2f} ms < 5 ms", bot.stat(99) < 5))
            checks.append((f"{condition}, {clients} client(s): no failed or wrong answers", bot.errors == 0))
    headers = [
        "condition",
        "server",
        "clients",
        "requests/round",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "p99 status",
        "p99 create",
        "req/s",
        "jobs in flight after",
        "errors",
    ]
    tbl = table(headers, rows)
    print()
    print(tbl)
    for text, ok in checks:
        print(f"{'pass' if ok else 'MISS'}: {text}")
    body = [
        "**Result**",
        "",
        *(f"- {verdict(ok)} {text}" for text, ok in checks),
        "",
        f"Medians over {args.rounds} rounds (each figure is the median of the rounds' percentiles; "
        "p99 status / create: the two commands of the amibot mix separately).",
        "",
        tbl,
        "",
    ]
    for condition, prof in profiles.items():
        body += profile_text(condition, prof)
    body += [
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
        "turns (the order flips every round) after a warm-up of 200 requests each. Every create adds "
        "an in-flight job, so `/ami status` answers over a growing number of jobs from round to round.",
        f"- Slow AWS: a proxy in front of moto sleeps {AWS_DELAY_S:g} s before forwarding each request; "
        "the bot's AWS_ENDPOINT_URL points at it, so each create's DescribeInstances + CreateImage "
        "(made by the workers) takes ≥ 4 s.",
        *(f"- {c}: {n}." for c, n in notes.items()),
        "- The machine has 2 cores shared by the load generator, the server under test, moto, Redis and "
        "the fake Slack, and other sessions may run tests at the same time: compare ratios within "
        "a run rather than absolute figures across runs.",
    ]
    write_section(
        NAME,
        section(
            "Ack latency (HTTP mode)",
            "python -m bench.ack_latency   (with py-spy on the PATH for the profile)",
            [
                "p99 < 50 ms at 50 concurrent clients, with AWS answering at once and with every AWS call "
                "taking 2 s",
                "p99 within 2× of a trivial Bolt app that only acks, served the same way, same run",
                "p99 < 5 ms for a single client",
            ],
            "\n".join(body),
        ),
    )
    return all(ok for _, ok in checks)


def profile_text(condition: str, prof: dict[str, Any]) -> list[str]:
    total = max(1, prof["samples"])
    possible = prof["seconds"] * prof["rate"]
    groups = table(
        ["threads", "samples holding the GIL", "share of the run"],
        [[g, n, f"{100 * n / possible:.0f} %"] for g, n in prof["groups"].most_common()],
    )
    ack = max(1, prof["ack_samples"])
    frames = table(
        ["amibot function on the ack path (inclusive)", "share of the ack path's GIL time"],
        [[f"`{f}`", f"{100 * n / ack:.0f} %"] for f, n in prof["frames"].most_common(12)],
    )
    return [
        f"Profile, {condition} (`py-spy record --gil`, {total} samples in one more 50-client run of "
        f"{prof['seconds']:.1f} s, p99 {prof['p99']:.0f} ms, {prof['active']} jobs in flight at its end): "
        "who held the interpreter lock, and where the ack path held it.",
        "",
        groups,
        "",
        frames,
        "",
    ]


if __name__ == "__main__":
    main()
