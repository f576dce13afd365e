"""Memory: RSS of the real `amibot run --http` process tracking 10,000 in-flight jobs, and Redis
memory per job.

10,000 pending images are seeded in moto's backend (in this process) across 3 regions; the bot
starts with no jobs (baseline RSS after a few tracker polls); then 10,000 tracking jobs are stored
through the bot's JobStore, each with the two audit entries a real `/ami create` leaves (Redis
`used_memory` before and after); then the bot polls them several times (every DescribeImages call
counted at moto) while its RSS is sampled from /proc/<pid>/status.

    python -m bench.memory [--jobs 10000] [--polls 3] [--poll 5]
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
import uuid
from typing import Any

from bench._common import (
    BOT_ACCESS_KEY,
    MISSED,
    bot_env,
    bot_process,
    count_describe_images,
    fast_image_id_filter,
    jobs_store,
    peers,
    pending_images,
    prose,
    register_tracking,
    section,
    table,
    verdict,
    wait_polls,
    write_section,
)

NAME = "memory"
REGIONS = ("us-east-1", "eu-west-1", "ap-southeast-2")
GOAL_MIB = 200


class Sampler:
    """VmRSS of a process every `every` seconds, in a thread; the largest seen."""

    def __init__(self, bot: Any, every: float = 0.25) -> None:
        self._bot = bot
        self._every = every
        self._stop = threading.Event()
        self.samples: list[int] = []
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.samples.append(self._bot.memory_kib()["VmRSS"])
            except (FileNotFoundError, KeyError, AssertionError):
                return
            self._stop.wait(self._every)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def mib(kib: float) -> float:
    return kib / 1024


def main(argv: list[str] | None = None) -> bool:
    parser = argparse.ArgumentParser(prog="python -m bench.memory")
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--polls", type=int, default=3, help="tracker polls to wait for with the jobs")
    parser.add_argument("--poll", type=float, default=5.0, help="AMIBOT_POLL_INTERVAL (s)")
    args = parser.parse_args(argv)

    with peers() as p, fast_image_id_filter(), count_describe_images() as log:
        per_region = -(-args.jobs // len(REGIONS))
        images = [
            (region, image_id)
            for region in REGIONS
            for image_id in pending_images(p.moto, region, per_region, f"bench-{region}")
        ][: args.jobs]
        prefix = f"bench-mem:{uuid.uuid4().hex[:6]}:"
        redis = p.redis.client()
        env = bot_env(p, prefix, AMIBOT_POLL_INTERVAL=f"{args.poll:g}")
        bot = bot_process(p, "amibot-memory", env).start()
        try:
            wait_polls(bot, 2)
            idle = bot.memory_kib()
            print(f"bot idle: VmRSS {mib(idle['VmRSS']):.1f} MiB")

            redis.execute_command("MEMORY PURGE")
            before = int(redis.info("memory")["used_memory"])
            started = time.monotonic()
            register_tracking(jobs_store(p.redis.url, prefix), images, time.time(), audit=True)
            stored_s = time.monotonic() - started
            after = int(redis.info("memory")["used_memory"])
            tracking = redis.scard(prefix + "jobs:tracking")
            sample_job = redis.srandmember(prefix + "jobs:tracking")
            job_bytes = int(redis.memory_usage(f"{prefix}job:{sample_job}") or 0)
            audit_bytes = int(redis.memory_usage(prefix + "audit") or 0)
            grown = (after - before) / 1e6
            print(f"redis: {tracking} tracking jobs stored in {stored_s:.1f} s, +{grown:.1f} MB")

            polls_before = len(log.by(BOT_ACCESS_KEY))
            started, cpu = time.monotonic(), bot.cpu_seconds_all()
            with Sampler(bot) as sampler:
                wait_polls(bot, args.polls + 1, timeout=600)
            poll_s = (time.monotonic() - started) / (args.polls + 1)
            poll_cpu = (bot.cpu_seconds_all() - cpu) / (args.polls + 1)
            loaded = bot.memory_kib()
            calls = log.by(BOT_ACCESS_KEY)[polls_before:]
            rss, peak = mib(loaded["VmRSS"]), mib(loaded["VmHWM"])
            print(f"bot with {args.jobs} jobs: VmRSS {rss:.1f} MiB, peak {peak:.1f} MiB")
        finally:
            bot.stop()
    return report(
        args,
        idle,
        loaded,
        sampler.samples,
        before,
        after,
        tracking,
        job_bytes,
        audit_bytes,
        calls,
        poll_s,
        poll_cpu,
    )


def report(
    args: argparse.Namespace,
    idle: dict[str, int],
    loaded: dict[str, int],
    samples: list[int],
    before: int,
    after: int,
    tracking: int,
    job_bytes: int,
    audit_bytes: int,
    calls: list[Any],
    poll_s: float,
    poll_cpu: float,
) -> bool:
    per_job = (after - before) / max(1, tracking)
    peak = max(loaded["VmHWM"], *samples) if samples else loaded["VmHWM"]
    ids = sum(c.ids for c in calls)
    checks = [
        (
            f"bot RSS {mib(loaded['VmRSS']):.1f} MiB (peak {mib(peak):.1f} MiB) with {tracking} in-flight "
            f"jobs (< {GOAL_MIB} MB)",
            peak * 1024 / 1e6 < GOAL_MIB,
        ),
    ]
    rss_table = table(
        ["bot process", "VmRSS MiB", "VmHWM (peak) MiB"],
        [
            ["idle (no jobs), after 2 tracker polls", mib(idle["VmRSS"]), mib(idle["VmHWM"])],
            [
                f"{tracking} tracking jobs, after {args.polls}+ polls",
                mib(loaded["VmRSS"]),
                mib(loaded["VmHWM"]),
            ],
            [
                "largest VmRSS sampled during those polls (every 0.25 s)",
                mib(max(samples)) if samples else float("nan"),
                "",
            ],
        ],
    )
    redis_table = table(
        ["Redis", "bytes"],
        [
            ["used_memory before the jobs", before],
            [f"used_memory after {tracking} jobs", after],
            ["per job (difference ÷ jobs)", f"{per_job:.0f}"],
            ["one job document (`MEMORY USAGE`)", job_bytes],
            [f"the audit stream ({2 * tracking} entries, `MEMORY USAGE`)", audit_bytes],
        ],
    )
    print()
    print(rss_table)
    print()
    print(redis_table)
    for text, ok in checks:
        print(f"{'pass' if ok else 'MISS'}: {text}")
    body = "\n".join(
        [
            "**Result**",
            "",
            *(f"- {verdict(ok)} {text}" for text, ok in checks),
            f"- Redis: {per_job:.0f} bytes per in-flight job ({per_job * tracking / 1e6:.1f} MB for "
            f"{tracking}), audit entries included.",
            "",
            rss_table,
            "",
            redis_table,
            "",
            "**How it was measured**",
            "",
            prose(
                f"""
                - {args.jobs} images registered in moto's EC2 backend (in this process) across
                  {", ".join(REGIONS)}, state `pending` for the whole run.
                - `amibot run --http` as a real process (defaults but AMIBOT_POLL_INTERVAL={args.poll:g} s):
                  the ack process and its background child (`amibot work`, where the tracker runs);
                  RSS from /proc/<pid>/status of both, added up (VmRSS now, VmHWM the peaks).
                - {tracking} jobs stored through the bot's JobStore as `/ami create` leaves them once
                  CreateImage answered (TRACKING, image PENDING), each with its create.requested and
                  create.started audit entries, so the Redis figure is what an in-flight create costs.
                  Redis `used_memory` from `INFO memory` before and after (after `MEMORY PURGE`).
                - Then the tracker polled them: {len(calls)} DescribeImages calls asking for {ids} image
                  ids ({ids / max(1, tracking):.1f} sweeps of all {tracking}), counted at moto, while the
                  bot's RSS was sampled; ~{poll_s:.1f} s per poll, most of it moto serializing the answers
                  in this process. The bot spent {poll_cpu:.2f} s of CPU per poll (reading the 10,000 jobs
                  from Redis, parsing the DescribeImages answers; with the default 15 s interval that is
                  {100 * poll_cpu / 15:.0f} % of a core, in the background child, at a lower CPU priority
                  than the acks).
                """
            ),
        ]
    )
    write_section(
        NAME,
        section(
            "Memory with 10,000 in-flight jobs",
            "python -m bench.memory",
            ["under 200 MB RSS with 10,000 in-flight jobs"],
            body,
        ),
    )
    return all(ok for _, ok in checks)


if __name__ == "__main__":
    sys.exit(0 if main() else MISSED)
