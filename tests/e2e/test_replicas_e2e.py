"""Two real `amibot run --http` replicas on one Redis and key prefix: commands to either one,
each image polled by one replica at a time, each notice posted once, and a replica killed with
kill -9 taken over by the other."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from tests.conftest import set_image_state
from tests.e2e.harness import BotProcess, DescribeImagesLog, job_id_of, metric, notices_for
from tests.peers import wait_until

pytestmark = pytest.mark.e2e

REGION = "us-east-1"
IMAGES = 20
DESTINATIONS = ("CGENERAL", "COPS")
# Each replica signs its AWS calls with its own access key (moto reads 20 upper-case characters).
ACCESS_KEYS = {"replica-a": "AKIAREPLICA000000AAA", "replica-b": "AKIAREPLICA000000BBB"}


def images_by_job(moto: Any) -> dict[str, str]:
    """job id -> image id, for every image moto holds that amibot tagged."""
    ec2 = moto.client("ec2", REGION)
    found = ec2.describe_images(Owners=["self"], Filters=[{"Name": "tag-key", "Values": ["amibot:job"]}])
    by_job: dict[str, list[str]] = {}
    for image in found["Images"]:
        job = next(t["Value"] for t in image["Tags"] if t["Key"] == "amibot:job")
        by_job.setdefault(job, []).append(image["ImageId"])
    assert all(len(ids) == 1 for ids in by_job.values()), by_job
    return {job: ids[0] for job, ids in by_job.items()}


def notices_posted(slack: Any, image_ids: list[str]) -> int:
    return sum(len(notices_for(slack, image_id)) for image_id in image_ids)


def assert_exactly_once(slack: Any, image_ids: list[str]) -> None:
    problems = []
    for image_id in image_ids:
        for channel in DESTINATIONS:
            posts = notices_for(slack, image_id, channel)
            messages = [m for m in slack.messages(channel) if image_id in m.text]
            if len(posts) != 1 or len(messages) != 1:
                problems.append(f"{image_id} in {channel}: {len(posts)} posts, {len(messages)} messages")
    assert not problems, problems


def test_two_replicas_share_the_work_and_notice_each_image_once(
    start_bot: Callable[..., BotProcess],
    slack: Any,
    pending_images: Any,
    instance: str,
    redis_srv: Any,
    prefix: str,
    describe_images_log: DescribeImagesLog,
) -> None:
    bots = [
        start_bot(name, start=False, AWS_ACCESS_KEY_ID=key, AMIBOT_NOTIFY_CHANNEL="COPS")
        for name, key in ACCESS_KEYS.items()
    ]
    name_of = {key: name for name, key in ACCESS_KEYS.items()}
    for bot in bots:
        bot.launch()
    for bot in bots:
        bot.wait_healthy()

    # 20 creates, alternating between the replicas
    jobs: list[str] = []
    urls: list[str] = []
    for n in range(IMAGES):
        url = slack.new_response_url()
        resp = bots[n % 2].command(f"create {instance} --name 'web replica {n:02d}'", url)
        assert resp.status == 200 and resp.seconds < 3, resp
        jobs.append(job_id_of(resp))
        urls.append(url)
    assert len(set(jobs)) == IMAGES

    redis = redis_srv.client()
    wait_until(lambda: redis.scard(f"{prefix}jobs:tracking") == IMAGES, timeout=30, what="every job tracking")
    by_job = images_by_job(pending_images)
    assert sorted(by_job) == sorted(jobs)  # one image per job, none twice
    images = [by_job[job] for job in jobs]

    # one replica polls at a time, all pending images in one DescribeImages call (a poll already
    # under way may have read the tracked jobs before the last one was added: skip it)
    tracked = time.monotonic()
    first_poll = wait_until(lambda: describe_images_log.polls(since=tracked), what="a poll")[0]
    since = first_poll.at + 1e-6
    wait_until(lambda: len(describe_images_log.polls(since=since)) >= 10, timeout=15, what="ten polls")
    pollers = describe_images_log.pollers(since)
    assert len(pollers) == 1, f"both replicas polled at once: {pollers}"
    leader = name_of.get(pollers.pop(), "?")
    assert all(set(c.image_ids) == set(images) for c in describe_images_log.polls(since=since))
    assert slack.posts() == []

    # the first half becomes available: each notice once, in each destination
    first, second = images[: IMAGES // 2], images[IMAGES // 2 :]
    for image_id in first:
        set_image_state(pending_images, REGION, image_id, "available")
    slack.wait_for(
        lambda s: notices_posted(s, first) >= 2 * len(first), timeout=30, what="notices of the first half"
    )
    assert_exactly_once(slack, first)

    # kill -9 the replica that polls; the other takes over and notices the rest
    survivor = next(bot for bot in bots if bot.name != leader)
    dead = next(bot for bot in bots if bot.name == leader)
    dead.kill()
    killed_at = time.monotonic()
    wait_until(
        lambda: describe_images_log.polls(ACCESS_KEYS[survivor.name], since=killed_at),
        timeout=15,
        what=f"{survivor.name} polling after {leader} died",
    )
    for image_id in second:
        set_image_state(pending_images, REGION, image_id, "available")
    slack.wait_for(
        lambda s: notices_posted(s, images) >= 2 * IMAGES, timeout=30, what="notices of the second half"
    )

    # a few more polls and drains: still exactly once
    wait_until(lambda: redis.scard(f"{prefix}jobs:tracking") == 0, timeout=15, what="no job tracking")
    assert describe_images_log.pollers(killed_at) == {ACCESS_KEYS[survivor.name]}
    polls = metric(survivor.metrics(), "amibot_tracker_polls_total")
    wait_until(
        lambda: metric(survivor.metrics(), "amibot_tracker_polls_total") >= polls + 5,
        timeout=15,
        what="five more ticks of the survivor",
    )
    assert_exactly_once(slack, images)
    assert len(slack.posts()) == 2 * IMAGES
    started = [[c for c in slack.responses(url) if c.ok] for url in urls]
    assert all(len(calls) == 1 for calls in started), [len(calls) for calls in started]
