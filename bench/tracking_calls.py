"""Tracking: DescribeImages calls for 1,000 in-flight images, amibot's batched poll against one boto3
`image_available` waiter per image (the seed script's way), counted at the moto server in the same
run; then how soon a notice reaches Slack after an image turns available.

1. 1,000 pending images in moto across 3 regions (seeded in moto's backend, in this process).
2. Baseline: one waiter per image, all at once (threads), `Delay` shrunk from the seed's 15 s to
   WAITER_DELAY s and `MaxAttempts` WAITER_ATTEMPTS so it ends: every DescribeImages call is counted.
3. 1,000 tracking jobs stored through the bot's JobStore (as `/ami create` leaves them once
   CreateImage answered), then the real `amibot run --http` with AMIBOT_POLL_INTERVAL=2: its
   DescribeImages calls are counted at moto (by access key) and grouped into polls.
4. Notice latency: images flipped to `available` one by one at known times; the time until the fake
   Slack receives the chat.postMessage that names the image.

    python -m bench.tracking_calls [--images 1000] [--poll 2] [--flips 100]
"""

from __future__ import annotations

import argparse
import random
import re
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import WaiterError

from bench._common import (
    BOT_ACCESS_KEY,
    MISSED,
    DescribeImagesCall,
    DescribeImagesLog,
    Peers,
    bot_env,
    bot_process,
    count_describe_images,
    fast_image_id_filter,
    jobs_store,
    median,
    pct,
    peers,
    pending_images,
    prose,
    register_tracking,
    section,
    table,
    verdict,
    wait_polls,
    wait_until,
    write_section,
)

NAME = "tracking_calls"
REGIONS = ("us-east-1", "eu-west-1", "ap-southeast-2")
SEED_DELAY_S = 15.0  # the seed script's waiter delay (boto3's default for image_available)
WAITER_DELAY_S = 5.0  # moto in this process keeps up with 1,000 waiters at 5 s (not at 1-2 s)
WAITER_ATTEMPTS = 3
WAITER_KEY = "AKIAWAITERBENCH00000"  # moto tells callers apart by the signing access key
AMI = re.compile(r"ami-[0-9a-f]+")


@dataclass
class Waiters:
    images: int
    calls: int
    seconds: float
    attempts: int
    failed: int
    sent: int  # HTTP requests sent by the waiters' clients (retries included)

    @property
    def per_image_cycle(self) -> float:
        """DescribeImages calls per image per polling cycle (one waiter attempt)."""
        return self.calls / (self.images * self.attempts)

    @property
    def per_image_minute(self) -> float:
        return self.calls / self.images / (self.seconds / 60)


@dataclass
class Polls:
    images: int
    interval: float
    polls: list[list[DescribeImagesCall]]
    seconds: float  # from the start of the first counted poll to the start of the one after the last

    @property
    def calls_per_poll(self) -> list[int]:
        return [len(p) for p in self.polls]

    @property
    def ids_per_poll(self) -> list[int]:
        return [sum(c.ids for c in p) for p in self.polls]

    @property
    def spans(self) -> list[float]:
        return [p[-1].at - p[0].at for p in self.polls]

    @property
    def per_image_minute(self) -> float:
        """Measured: calls in the window, per image, per minute (at this poll interval)."""
        return sum(self.calls_per_poll) / self.images / (self.seconds / 60)


def split(total: int, parts: int) -> list[int]:
    return [total // parts + (1 if n < total % parts else 0) for n in range(parts)]


def run_waiters(p: Peers, images: Sequence[tuple[str, str]], log: DescribeImagesLog) -> Waiters:
    """One boto3 `image_available` waiter per image, concurrently, each with its own thread."""
    per_region = len(images) // len(REGIONS) + 1  # a kept-alive connection per waiter
    # moto's development server sometimes drops a kept-alive connection under this load; retry those
    config = Config(max_pool_connections=per_region, retries={"mode": "standard", "max_attempts": 10})
    clients = {
        region: boto3.client(
            "ec2",
            region_name=region,
            endpoint_url=p.moto.url,
            aws_access_key_id=WAITER_KEY,
            aws_secret_access_key="testing",
            config=config,
        )
        for region in REGIONS
    }
    sent = Counter[str]()  # HTTP requests the waiters sent (retries included), to compare with moto's count
    for client in clients.values():
        client.meta.events.register("before-send", lambda **_: sent.update(["sent"]))
    start_line = threading.Barrier(len(images) + 1)
    failed: list[str] = []

    def wait(n: int, region: str, image_id: str) -> None:
        waiter = clients[region].get_waiter("image_available")
        start_line.wait()
        time.sleep(WAITER_DELAY_S * n / len(images))  # the images were not all created at once
        try:
            waiter.wait(
                ImageIds=[image_id], WaiterConfig={"Delay": WAITER_DELAY_S, "MaxAttempts": WAITER_ATTEMPTS}
            )
        except WaiterError as exc:
            if "Max attempts exceeded" not in str(exc):  # still pending after the last attempt: intended
                failed.append(str(exc))
        except Exception as exc:  # e.g. moto closing a connection under the load
            failed.append(repr(exc))

    threads = [threading.Thread(target=wait, args=(n, *image), daemon=True) for n, image in enumerate(images)]
    for thread in threads:
        thread.start()
    start_line.wait()
    started = time.monotonic()
    for thread in threads:
        thread.join()
    seconds = time.monotonic() - started
    calls = len(log.by(WAITER_KEY, since=started - 1))
    if failed:
        print(f"  ! {len(failed)} waiters failed, e.g. {failed[0]}")
    return Waiters(len(images), calls, seconds, WAITER_ATTEMPTS, len(failed), sent["sent"])


def group_polls(calls: Sequence[DescribeImagesCall], images: int) -> list[list[DescribeImagesCall]]:
    """Consecutive calls that together ask for every tracked image once are one poll (a poll that
    asked for an image twice would show as a short poll and a misaligned next one)."""
    polls: list[list[DescribeImagesCall]] = [[]]
    for call in sorted(calls, key=lambda c: c.at):
        polls[-1].append(call)
        if sum(c.ids for c in polls[-1]) >= images:
            polls.append([])
    return [p for p in polls if p]


def count_polls(bot: Any, log: DescribeImagesLog, images: int, interval: float, polls: int) -> Polls:
    """Every DescribeImages call the bot made from its first poll on, grouped into polls; the polls
    after the first (start-up) that were complete when counting stopped."""
    wait_polls(bot, polls + 3)
    grouped = group_polls(log.by(BOT_ACCESS_KEY), images)
    counted = grouped[1 : polls + 1]
    assert all(sum(c.ids for c in p) == images for p in counted), [len(p) for p in grouped]
    seconds = grouped[polls + 1][0].at - counted[0][0].at  # from the first counted poll to the next uncounted
    return Polls(images, interval, counted, seconds)


def notice_latency(p: Peers, images: Sequence[tuple[str, str]], flips: int, span: float) -> list[float]:
    """Flip `flips` images to available at random moments over `span` seconds; seconds from each
    flip to the fake Slack receiving the notice that names the image."""
    flipped: dict[str, float] = {}
    posted: dict[str, float] = {}
    lock = threading.Lock()

    def on_call(call: Any) -> None:
        if call.method == "chat.postMessage" and call.ok:
            for image_id in AMI.findall(str(call.params.get("text", ""))):
                with lock:
                    posted.setdefault(image_id, call.time)

    unsubscribe = p.slack.subscribe(on_call)
    try:
        rnd = random.Random(7)
        chosen = rnd.sample(list(images), flips)
        gaps = [rnd.uniform(0, 2 * span / flips) for _ in chosen]
        for (region, image_id), gap in zip(chosen, gaps, strict=True):
            time.sleep(gap)
            p.moto.backend(region).amis[image_id].state = "available"
            with lock:
                flipped[image_id] = time.time()
        wait_until(lambda: len(posted.keys() & flipped.keys()) == flips, 60, "every notice")
    finally:
        unsubscribe()
    return [posted[i] - flipped[i] for i in flipped]


def main(argv: list[str] | None = None) -> bool:
    parser = argparse.ArgumentParser(prog="python -m bench.tracking_calls")
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--poll", type=float, default=2.0, help="AMIBOT_POLL_INTERVAL (s)")
    parser.add_argument("--polls", type=int, default=5, help="polls to count")
    parser.add_argument("--flips", type=int, default=100)
    args = parser.parse_args(argv)

    with peers() as p, fast_image_id_filter(), count_describe_images() as log:
        images = [
            (region, image_id)
            for region, count in zip(REGIONS, split(args.images, len(REGIONS)), strict=True)
            for image_id in pending_images(p.moto, region, count, f"bench-{region}")
        ]
        print(f"{len(images)} pending images in {len(REGIONS)} regions; {len(images)} waiters …")
        waiters = run_waiters(p, images, log)
        print(f"  waiters: {waiters.calls} DescribeImages calls in {waiters.seconds:.1f} s")

        prefix = f"bench-track:{uuid.uuid4().hex[:6]}:"
        register_tracking(jobs_store(p.redis.url, prefix), images, time.time())
        env = bot_env(p, prefix, AMIBOT_POLL_INTERVAL=f"{args.poll:g}", AWS_ACCESS_KEY_ID=BOT_ACCESS_KEY)
        bot = bot_process(p, "amibot-tracking", env).start()
        try:
            polls = count_polls(bot, log, len(images), args.poll, args.polls)
            regions = [sorted({c.region for c in poll}) for poll in polls.polls]
            assert all(r == sorted(REGIONS) for r in regions), regions
            print(f"  amibot: calls per poll {polls.calls_per_poll}, image ids per poll {polls.ids_per_poll}")
            latencies = notice_latency(p, images, args.flips, span=10 * args.poll)
            print(f"  notices: p50 {pct(latencies, 50):.2f} s, p99 {pct(latencies, 99):.2f} s")
        finally:
            bot.stop()
    return report(args, waiters, polls, latencies)


def report(args: argparse.Namespace, waiters: Waiters, polls: Polls, latencies: list[float]) -> bool:
    per_poll = max(polls.calls_per_poll) if polls.polls else 0
    images = polls.images
    # Both at the seed's 15 s cadence, from the per-cycle counts measured above.
    cycles_per_minute = 60 / SEED_DELAY_S
    waiter_15 = waiters.per_image_cycle * cycles_per_minute
    amibot_15 = per_poll / images * cycles_per_minute
    ratio = waiter_15 / amibot_15 if amibot_15 else float("inf")
    bound = args.poll + 2
    checks = [
        (
            f"{per_poll} DescribeImages calls per poll for {images} images in {len(REGIONS)} regions (≤ 15)",
            per_poll <= 15,
        ),
        (f"{ratio:.0f}× fewer calls than one waiter per image (≥ 60×)", ratio >= 60),
        (
            f"notice p99 {pct(latencies, 99):.2f} s after the image turned available (≤ poll interval "
            f"{args.poll:g} s + 2 s)",
            pct(latencies, 99) <= bound,
        ),
    ]
    rows = [
        [
            "waiter per image (baseline)",
            f"{WAITER_DELAY_S:g} s (seed: {SEED_DELAY_S:g} s)",
            waiters.calls,
            f"{waiters.per_image_cycle:.3f}",
            f"{waiters.per_image_minute:.1f}",
            f"{waiter_15:.3f}",
        ],
        [
            "amibot batched poll",
            f"{args.poll:g} s (default: 15 s)",
            sum(polls.calls_per_poll),
            f"{per_poll / images:.4f}",
            f"{polls.per_image_minute:.3f}",
            f"{amibot_15:.4f}",
        ],
    ]
    calls_table = table(
        [
            "approach",
            "interval",
            "DescribeImages counted",
            "calls per image per cycle",
            "calls per image-minute (measured)",
            "calls per image-minute at 15 s",
        ],
        rows,
    )
    poll_table = table(
        ["poll", "DescribeImages calls", "image ids asked", "first → last call (s)"],
        [
            [n + 1, c, i, f"{s:.2f}"]
            for n, (c, i, s) in enumerate(
                zip(polls.calls_per_poll, polls.ids_per_poll, polls.spans, strict=True)
            )
        ],
    )
    latency_table = table(
        ["notices", "p50 s", "p90 s", "p99 s", "max s", "goal s"],
        [
            [
                len(latencies),
                pct(latencies, 50),
                pct(latencies, 90),
                pct(latencies, 99),
                max(latencies),
                f"≤ {bound:g}",
            ]
        ],
    )
    print()
    print(calls_table)
    print()
    print(poll_table)
    print()
    print(latency_table)
    for text, ok in checks:
        print(f"{'pass' if ok else 'MISS'}: {text}")
    body = "\n".join(
        [
            "**Result**",
            "",
            *(f"- {verdict(ok)} {text}" for text, ok in checks),
            "",
            "DescribeImages calls, counted at the moto server (by the access key that signed them), "
            f"{images} pending images:",
            "",
            calls_table,
            "",
            f"amibot's polls (median time from a poll's first call to its last {median(polls.spans):.2f} s):",
            "",
            poll_table,
            "",
            f"Notice latency, AMIBOT_POLL_INTERVAL={args.poll:g} s:",
            "",
            latency_table,
            "",
            "**How it was measured**",
            "",
            prose(
                f"""
                - {images} images registered in moto's EC2 backend (in this process) across
                  {", ".join(REGIONS)}, state `pending`.
                - Baseline: {images} threads, each `ec2.get_waiter('image_available').wait(ImageIds=[id])`
                  (the seed script's approach) with `Delay` {WAITER_DELAY_S:g} s instead of
                  {SEED_DELAY_S:g} s and `MaxAttempts` {WAITER_ATTEMPTS} so that the run ends; the starts are
                  spread over one delay. Each attempt is one DescribeImages call (counted at moto:
                  {waiters.per_image_cycle:.3f} per image per attempt; the clients sent {waiters.sent}
                  requests, retries of dropped connections included; {waiters.failed} waiters failed).
                  Over the whole run that was
                  {waiters.per_image_minute:.1f} calls per image-minute (delay plus call time under load,
                  start spread included); at the seed's {SEED_DELAY_S:g} s the same per-attempt count gives
                  {waiter_15:.1f}.
                - amibot: {images} tracking jobs stored through the bot's JobStore as `/ami create` leaves
                  them (TRACKING, image PENDING), then `amibot run --http` with
                  AMIBOT_POLL_INTERVAL={args.poll:g}. Its DescribeImages calls are grouped into polls (the
                  consecutive calls that together ask for every tracked image once); the first poll is
                  left out as start-up. At 15 s: calls per poll × 4 polls per minute ÷ images; the ratio
                  compares both approaches at that same cadence.
                - Notice latency: {len(latencies)} of the images flipped to `available` in moto one at a
                  time at random moments over ~{10 * args.poll:g} s; latency is from the flip to the fake
                  Slack recording the chat.postMessage that names the image. Expect up to one poll interval
                  of waiting for the next poll, plus the poll itself, plus the outbox delivery.
                - moto answers the `image-id` filter by dictionary lookup in this benchmark
                  (`bench._common.fast_image_id_filter`; moto's own matching is O(images × ids) and would
                  make moto the bottleneck); the calls made and counted are the same.
                """
            ),
        ]
    )
    write_section(
        NAME,
        section(
            "Tracking: DescribeImages calls and notice latency",
            "python -m bench.tracking_calls",
            [
                "one DescribeImages call per account, region and up to 200 in-flight images per poll: "
                "≤ 15 calls per poll for 1,000 images in 3 regions",
                "≥ 60× fewer calls than one boto3 `image_available` waiter per image, counted in the same "
                "run",
                "a notice within one poll interval + 2 s of the image becoming available (p99)",
            ],
            body,
        ),
    )
    return all(ok for _, ok in checks)


if __name__ == "__main__":
    sys.exit(0 if main() else MISSED)
