"""Ack latency in HTTP mode: the real `amibot run --http` next to a trivial Bolt app that only acks.

Peers: a real redis-server, the moto server (in this process), the fake Slack Web API. A load
generator in its own process sends signed `/ami status` and `/ami create <instance>` (alternating,
50/50) on keep-alive connections: 50 concurrent clients x 2,000 requests, then 1 client x 500
requests, to amibot and to the floor in turn, for several rounds; figures are medians over the
rounds. Then the same with every AWS call delayed by 2 s (a delaying proxy in front of moto).
Besides latency, each run records the server's CPU time per request (/proc/<pid>/stat), which a
busy machine disturbs far less than latency.

Then `/ami status` alone, one client, with 0 / 1,000 / 10,000 jobs in flight (the ack's cost as
jobs accumulate), and, with py-spy on the PATH (or --py-spy), a profile of the bot under the
50-client mix.

    python -m bench.ack_latency [--rounds 3] [--requests 2000] [--single 500] [--clients 50]
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from bench._common import (
    BOT_TOKEN,
    MISSED,
    PY,
    ROOT,
    SECRET,
    DelayProxy,
    Peers,
    Process,
    bot_env,
    bot_process,
    cpu_seconds,
    free_port,
    jobs_store,
    median,
    pct,
    peers,
    register_tracking,
    section,
    signed_headers,
    table,
    verdict,
    write_section,
)

NAME = "ack_latency"
AWS_DELAY_S = 2.0
STATUS_LEVELS = (0, 1_000, 10_000)  # jobs in flight for the `/ami status` scaling runs


@dataclass
class Run:
    """One load run against one server."""

    latencies: list[float]
    by_kind: dict[str, list[float]]
    wall_s: float
    cpu_ms: float  # the server's CPU time per request
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
    def rate(self) -> float:
        return median([r.rate for r in self.runs])

    @property
    def cpu_ms(self) -> float:
        return median([r.cpu_ms for r in self.runs])

    @property
    def errors(self) -> int:
        return sum(r.failed + r.unexpected for r in self.runs)

    @property
    def active(self) -> str:
        return "–".join(str(n) for n in sorted({r.active for r in self.runs}))


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


def requests(
    p: Peers, instance: str, count: int, *, floor: bool, kinds: Sequence[str] = ("status", "create")
) -> list[dict[str, Any]]:
    """Signed slash commands, the `kinds` in turn; each with its own response URL (and so its own
    signature: amibot refuses a replayed one)."""
    out = []
    for n in range(count):
        kind = kinds[n % len(kinds)]
        text = f"create {instance}" if kind == "create" else "status"
        body = command_body(text, p.slack.new_response_url(), n)
        expect = "ok" if floor else ("Job `j-" if kind == "create" else "In-flight jobs")
        out.append({"body": body, "headers": signed_headers(body.encode()), "expect": expect, "kind": kind})
    return out


def load(server: Process, reqs: Sequence[dict[str, Any]], clients: int) -> Run:
    spec = json.dumps({"port": server.port, "clients": clients, "requests": list(reqs)})
    cpu = cpu_seconds(server.pid)
    done = subprocess.run(
        [PY, "-m", "bench._loadgen"], input=spec, capture_output=True, text=True, cwd=ROOT, check=True
    )
    cpu = cpu_seconds(server.pid) - cpu
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
        1000 * cpu / max(1, len(result["latencies_ms"])),
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
        load(proc, requests(p, instance, 200, floor=name == "floor"), args.clients)
    for rnd in range(args.rounds):
        order = list(servers.items()) if rnd % 2 == 0 else list(servers.items())[::-1]
        for clients, count in ((args.clients, args.requests), (1, args.single)):
            for name, proc in order:
                run = load(proc, requests(p, instance, count, floor=name == "floor"), clients)
                if name == "amibot":
                    run.active = int(redis.zcard(prefix + "jobs:active"))
                series.setdefault((name, clients), Series()).runs.append(run)
                print(
                    f"  round {rnd + 1} {name:6} {clients:2} clients: p50 {pct(run.latencies, 50):7.2f} "
                    f"p99 {pct(run.latencies, 99):7.2f} ms, {run.rate:5.0f} req/s, "
                    f"{run.cpu_ms:.2f} ms CPU per request"
                    + (f", {run.active} jobs in flight" if name == "amibot" else "")
                )
    return series


def status_scaling(p: Peers, count: int) -> list[tuple[int, Run]]:
    """`/ami status` alone, one client, over 0 / 1,000 / 10,000 jobs in flight (stored through the
    bot's JobStore; the tracker is kept idle with a one-hour poll interval)."""
    prefix = f"bench-status:{uuid.uuid4().hex[:6]}:"
    bot = bot_process(p, "amibot-status", bot_env(p, prefix, AMIBOT_POLL_INTERVAL="3600")).start()
    store = jobs_store(p.redis.url, prefix)
    found = []
    have = 0
    try:
        for level in STATUS_LEVELS:
            images = [("us-east-1", f"ami-{n:017x}") for n in range(have, level)]
            register_tracking(store, images, time.time())
            have = level
            load(bot, requests(p, "", 5, floor=False, kinds=("status",)), 1)  # warm up
            run = load(bot, requests(p, "", count, floor=False, kinds=("status",)), 1)
            found.append((level, run))
            print(
                f"  /ami status with {level:6} jobs in flight: p50 {pct(run.latencies, 50):7.2f} ms, "
                f"{run.cpu_ms:.2f} ms CPU per request"
            )
    finally:
        bot.stop()
    return found


# --- an optional profile of the bot under the 50-client load (py-spy) ---------------------------------

THREAD_GROUPS = (
    ("waitress", "HTTP threads (the ack path)"),
    ("amibot-worker", "workers (AWS calls)"),
    ("ThreadPoolExecutor", "scheduled jobs (tracker, outbox, work loop)"),
    ("APScheduler", "scheduler"),
    ("MainThread", "waitress I/O loop"),
)


def profile(py_spy: str, p: Peers, bot: Process, instance: str, count: int, clients: int) -> dict[str, Any]:
    """`py-spy record --gil` of the bot during one more 50-client run: which threads held the
    interpreter lock, and in which of amibot's functions the ack path held it."""
    out = p.workdir / f"py-spy-{bot.pid}.txt"
    argv = [
        py_spy,
        "record",
        "--pid",
        str(bot.pid),
        "--gil",
        "--threads",
        "-r",
        "1000",
        "-f",
        "raw",
        "-o",
        str(out),
    ]
    spy = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.0)  # attached
    run = load(bot, requests(p, instance, count, floor=False), clients)
    spy.send_signal(signal.SIGINT)  # py-spy writes its file when interrupted
    spy.wait(timeout=60)
    groups: Counter[str] = Counter()
    frames: Counter[str] = Counter()
    for line in out.read_text().splitlines():
        stack, _, samples = line.rpartition(" ")
        n = int(samples)
        thread, *calls = stack.split(";")
        group = next((label for key, label in THREAD_GROUPS if key in thread), "other")
        groups[group] += n
        if group != THREAD_GROUPS[0][1]:
            continue
        seen = set()
        for call in calls:
            match = re.match(r"(.+?) \((?:.*/)?((?:bot|handlers)/[\w/]+\.py)", call)
            if match and match.group(0) not in seen:
                seen.add(match.group(0))
                frames[f"{match.group(1)} ({match.group(2)})"] += n
    active = int(p.redis.client().zcard(bot.env["AMIBOT_KEY_PREFIX"] + "jobs:active"))
    return {
        "groups": groups,
        "frames": frames,
        "p99": pct(run.latencies, 99),
        "active": active,
        "count": count,
    }


def main(argv: list[str] | None = None) -> bool:
    parser = argparse.ArgumentParser(prog="python -m bench.ack_latency")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--single", type=int, default=500)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--status-requests", type=int, default=40, help="per level of the status scaling")
    parser.add_argument("--py-spy", default=shutil.which("py-spy"), help="py-spy binary (default: on PATH)")
    parser.add_argument("--profile-requests", type=int, default=2000)
    parser.add_argument("--no-profile", action="store_true")
    parser.add_argument("--worker-nice", help="AMIBOT_WORKER_NICE for the bot (default: the bot's default)")
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
                    nice = {} if args.worker_nice is None else {"AMIBOT_WORKER_NICE": args.worker_nice}
                    env = bot_env(p, prefix, aws_endpoint_url=endpoint, **nice)
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
                            profiles[condition] = profile(
                                py_spy, p, bot, instance, args.profile_requests, args.clients
                            )
                    finally:
                        bot.stop()
        finally:
            floor.stop()
        print("/ami status alone, 1 client:")
        scaling = status_scaling(p, args.status_requests)
    return report(results, scaling, profiles, notes, args)


def report(
    results: dict[str, dict[tuple[str, int], Series]],
    scaling: list[tuple[int, Run]],
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
                mine = name == "amibot"
                rows.append(
                    [
                        condition,
                        name,
                        clients,
                        count,
                        s.stat(50),
                        s.stat(95),
                        s.stat(99),
                        s.stat(99, "status") if mine else "",
                        s.stat(99, "create") if mine else "",
                        s.rate,
                        s.cpu_ms,
                        s.active if mine else "",
                        s.errors,
                    ]
                )
            ratio99 = bot.stat(99) / floor.stat(99)
            ratio50 = bot.stat(50) / floor.stat(50)
            cpu_ratio = bot.cpu_ms / floor.cpu_ms
            ratios = [f"{ratio50:.1f}×", "", f"{ratio99:.1f}×", "", "", "", f"{cpu_ratio:.1f}×", "", ""]
            rows.append([condition, "ratio amibot / floor", clients, "", *ratios])
            p99 = bot.stat(99)
            if clients > 1:
                checks.append((f"{condition}, {clients} clients: p99 {p99:.1f} ms < 50 ms", p99 < 50))
                checks.append(
                    (
                        f"{condition}, {clients} clients: p99 within 2× of the floor ({ratio99:.1f}×)",
                        ratio99 <= 2,
                    )
                )
            else:
                checks.append((f"{condition}, 1 client: p99 {p99:.2f} ms < 5 ms", p99 < 5))
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
        "server CPU ms/req",
        "jobs in flight after",
        "errors",
    ]
    main_table = table(headers, rows)
    scaling_table = table(
        ["jobs in flight", "requests", "p50 ms", "p99 ms", "server CPU ms/request"],
        [
            [level, len(run.latencies), pct(run.latencies, 50), pct(run.latencies, 99), run.cpu_ms]
            for level, run in scaling
        ],
    )
    print()
    print(main_table)
    print()
    print(scaling_table)
    for text, ok in checks:
        print(f"{'pass' if ok else 'MISS'}: {text}")
    body = [
        "**Result**",
        "",
        *(f"- {verdict(ok)} {text}" for text, ok in checks),
        "",
        f"Medians over {args.rounds} rounds (each figure is the median of the rounds' percentiles; "
        "p99 status / create: the two commands of the amibot mix separately; server CPU: the serving "
        "process's CPU time during the run ÷ requests, from /proc — for amibot the ack process; its "
        "background work (AWS calls, tracker, outbox) runs in a child process, `amibot work`, on the "
        "same two cores).",
        "",
        main_table,
        "",
        "`/ami status` alone, one client, as jobs in flight accumulate (a separate bot on its own keys, "
        "jobs stored through its JobStore, tracker idle):",
        "",
        scaling_table,
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
        "an in-flight job, so `/ami status` answers over more jobs from round to round.",
        f"- Slow AWS: a proxy in front of moto sleeps {AWS_DELAY_S:g} s before forwarding each request; "
        "the bot's AWS_ENDPOINT_URL points at it, so each create's DescribeInstances + CreateImage "
        "(made by the workers) takes ≥ 4 s.",
        *(f"- {c}: {n}." for c, n in notes.items()),
        "- The profile needs py-spy (`pip install py-spy`) on the PATH or `--py-spy PATH`; "
        "`--no-profile` skips it.",
        "- The machine has 2 cores shared by the load generator, the server under test, moto, Redis and "
        "the fake Slack, and other sessions may run tests at the same time: compare ratios within "
        "a run rather than absolute figures across runs; CPU per request is the steadiest figure.",
    ]
    write_section(
        NAME,
        section(
            "Ack latency (HTTP mode)",
            "python -m bench.ack_latency",
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
    total = max(1, sum(prof["groups"].values()))
    ack = max(1, prof["groups"][THREAD_GROUPS[0][1]])
    groups = table(
        ["threads", "samples holding the GIL", "share"],
        [[g, n, f"{100 * n / total:.0f} %"] for g, n in prof["groups"].most_common()],
    )
    frames = table(
        ["amibot function on the ack path (inclusive)", "share of the ack path's samples"],
        [[f"`{f}`", f"{100 * n / ack:.0f} %"] for f, n in prof["frames"].most_common(12)],
    )
    return [
        f"Profile, {condition}: `py-spy record --gil -r 1000` during one more {prof['count']}-request "
        "run at the same "
        f"concurrency (p99 {prof['p99']:.0f} ms, {prof['active']} jobs in flight at its end) — which "
        "threads held the interpreter lock, and where the ack path held it:",
        "",
        groups,
        "",
        frames,
        "",
    ]


if __name__ == "__main__":
    sys.exit(0 if main() else MISSED)
