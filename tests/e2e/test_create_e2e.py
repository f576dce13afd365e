"""`/ami create` end to end: signed slash commands to the real `amibot run --http` process,
images in the moto server, notices in the fake Slack; restarts, kill -9 and Slack outages."""

from __future__ import annotations

import json
import os
import re
import signal
import time
from collections.abc import Callable
from typing import Any

import pytest

from tests.conftest import set_image_state
from tests.e2e.harness import (
    BotProcess,
    Gate,
    ack_text,
    images_of_job,
    job_id_of,
    metric,
    notices_for,
    own_images,
    tags_of,
)
from tests.peers import redis_server, wait_until

pytestmark = pytest.mark.e2e

REGION = "us-east-1"


def polls(bot: BotProcess) -> float:
    return metric(bot.metrics(), "amibot_tracker_polls_total")


def wait_polls(bot: BotProcess, n: int = 3) -> None:
    """Let the tracker poll `n` more times (it runs every AMIBOT_POLL_INTERVAL while it holds the lease)."""
    start = polls(bot)
    wait_until(lambda: polls(bot) >= start + n, timeout=15, interval=0.05, what=f"{n} more tracker polls")


def tracked_image(moto: Any, job_id: str) -> dict[str, Any]:
    """Wait for the job's image to exist in moto; returns it (exactly one)."""
    images = wait_until(lambda: images_of_job(moto, job_id), timeout=15, what=f"the image of {job_id}")
    assert len(images) == 1, images
    return images[0]


def wait_tracking(redis: Any, prefix: str, job_id: str) -> dict[str, Any]:
    """Wait until the job is in the tracker's set (its CreateImage result is recorded)."""

    def tracking() -> dict[str, Any] | None:
        if not redis.sismember(f"{prefix}jobs:tracking", job_id):
            return None
        raw = redis.get(f"{prefix}job:{job_id}")
        return json.loads(raw) if raw else None

    return wait_until(tracking, timeout=15, what=f"{job_id} tracking")


def assert_one_notice_each(slack: Any, image_id: str, channels: tuple[str, ...]) -> None:
    for channel in channels:
        posts = notices_for(slack, image_id, channel)
        assert len(posts) == 1, (channel, [p.params.get("text") for p in posts])
        in_channel = [m for m in slack.messages(channel) if image_id in m.text]
        assert len(in_channel) == 1, (channel, [m.text for m in in_channel])


def test_create_acks_tracks_and_notices_once_per_destination(
    start_bot: Callable[..., BotProcess],
    slack: Any,
    pending_images: Any,
    instance: str,
    redis_srv: Any,
    prefix: str,
) -> None:
    bot = start_bot(AMIBOT_NOTIFY_CHANNEL="COPS")
    url = slack.new_response_url()
    resp = bot.command(
        f"create {instance} --name 'web golden 1' --description 'nightly build' --tag team=web", url
    )
    assert resp.status == 200 and resp.seconds < 3, resp
    text = ack_text(resp)
    job_id = job_id_of(resp)
    assert instance in text and "us-east-1" in text, text

    image = tracked_image(pending_images, job_id)
    image_id = image["ImageId"]
    assert image["State"] == "pending"
    assert image["Name"] == "web golden 1"
    assert image["Description"] == "nightly build"
    assert tags_of(image) == {"team": "web", "amibot:requested-by": "UASKER", "amibot:job": job_id}
    wait_tracking(redis_srv.client(), prefix, job_id)
    started = slack.wait_for(lambda s: [c for c in s.responses(url) if c.ok], what="'started' response")
    assert image_id in started[0].params["text"]

    wait_polls(bot, 3)  # still pending: no notice
    assert slack.posts() == []

    set_image_state(pending_images, REGION, image_id, "available")
    slack.wait_for(lambda s: len(s.posts()) >= 2, timeout=15, what="two notices")
    assert_one_notice_each(slack, image_id, ("CGENERAL", "COPS"))
    for post in slack.posts():
        notice = post.params["text"]
        for part in (image_id, "web golden 1", REGION, "available", "<@UASKER>", job_id):
            assert part in notice, (part, notice)
        assert re.search(r"after \d+(\.\d+)?(ms|s|m)", notice), notice
        facts = " ".join(
            f["text"] for block in post.params.get("blocks", []) for f in block.get("fields", [])
        )
        for label in ("AMI", "Name", "Region", "State", "Elapsed", "Requested by"):
            assert f"*{label}*" in facts, facts

    wait_polls(bot, 3)  # nothing more is posted, the response URL was used once
    assert len(slack.posts()) == 2
    assert len([c for c in slack.responses(url) if c.ok]) == 1
    status = ack_text(bot.command(f"status {job_id}", slack.new_response_url()))
    assert "succeeded" in status and image_id in status, status
    assert bot.stop() == 0  # SIGTERM: a clean exit
    assert "amibot stopped" in bot.log_text()


def test_kill_9_while_pending_then_restart_notices_once(
    start_bot: Callable[..., BotProcess],
    slack: Any,
    pending_images: Any,
    instance: str,
    redis_srv: Any,
    prefix: str,
) -> None:
    bot = start_bot(AMIBOT_NOTIFY_CHANNEL="COPS")
    job_id = job_id_of(bot.command(f"create {instance} --name 'web kill 1'", slack.new_response_url()))
    image_id = tracked_image(pending_images, job_id)["ImageId"]
    wait_tracking(redis_srv.client(), prefix, job_id)
    wait_polls(bot, 2)

    bot.kill()
    set_image_state(pending_images, REGION, image_id, "available")
    time.sleep(0.3)  # the image is available while no bot runs (short, not a wait for a condition)
    assert slack.posts() == []

    bot.start()
    slack.wait_for(lambda s: len(s.posts()) >= 2, timeout=15, what="notices after the restart")
    wait_polls(bot, 5)
    assert_one_notice_each(slack, image_id, ("CGENERAL", "COPS"))
    assert len(slack.posts()) == 2
    assert len(images_of_job(pending_images, job_id)) == 1


@pytest.mark.parametrize("where", ["before CreateImage", "after CreateImage, before its result is recorded"])
def test_kill_9_around_create_image_makes_one_image(
    where: str,
    start_bot: Callable[..., BotProcess],
    slack: Any,
    pending_images: Any,
    instance: str,
    moto_gate: Callable[..., Gate],
) -> None:
    """The ack recorded the job; the worker dies before (or inside) CreateImage; a new process
    finishes the job with exactly one image (a retry first looks for the image tagged with the job)."""
    from moto.ec2.responses.amis import AmisResponse
    from moto.ec2.responses.instances import InstanceResponse

    if where == "before CreateImage":
        gate = moto_gate(InstanceResponse, "describe_instances")  # the default name needs the Name tag
    else:
        gate = moto_gate(AmisResponse, "create_image", after=True)
    bot = start_bot()
    resp = bot.command(f"create {instance}", slack.new_response_url())
    job_id = job_id_of(resp)
    assert gate.entered.wait(15), f"the worker never reached the gate ({where})"
    # AWS hangs: commands are still answered at once (the ack path never waits on AWS)
    status = bot.command(f"status {job_id}", slack.new_response_url())
    assert status.seconds < 3 and job_id in ack_text(status), status
    bot.kill()
    gate.release()
    expected_before = 0 if where == "before CreateImage" else 1
    assert len(images_of_job(pending_images, job_id)) == expected_before

    bot.start()
    image = tracked_image(pending_images, job_id)
    assert image["Name"].startswith("web-20"), image["Name"]  # default name: Name tag + UTC stamp
    set_image_state(pending_images, REGION, image["ImageId"], "available")
    slack.wait_for(lambda s: s.posts("CGENERAL"), timeout=15, what="the notice")
    wait_polls(bot, 5)
    assert len(images_of_job(pending_images, job_id)) == 1
    assert len(own_images(pending_images)) == 1
    assert_one_notice_each(slack, image["ImageId"], ("CGENERAL",))


@pytest.mark.parametrize("close", [False, True], ids=["503", "connection dropped"])
def test_slack_down_when_the_image_is_ready_then_one_notice(
    close: bool,
    start_bot: Callable[..., BotProcess],
    slack: Any,
    pending_images: Any,
    instance: str,
    redis_srv: Any,
    prefix: str,
) -> None:
    bot = start_bot(AMIBOT_NOTIFY_CHANNEL="COPS")
    job_id = job_id_of(bot.command(f"create {instance} --name 'web down 1'", slack.new_response_url()))
    image_id = tracked_image(pending_images, job_id)["ImageId"]
    redis = redis_srv.client()
    wait_tracking(redis, prefix, job_id)
    slack.wait_for(lambda s: [c for c in s.responses() if c.ok], what="'started' response")

    slack.down(close=close)
    try:
        set_image_state(pending_images, REGION, image_id, "available")
        wait_until(lambda: not redis.sismember(f"{prefix}jobs:tracking", job_id), what="job finished")
        slack.wait_for(
            lambda s: len([c for c in s.calls("chat.postMessage") if c.fault == "down"]) >= 2,
            timeout=15,
            what="two refused delivery attempts",
        )
        assert slack.posts() == []
        assert metric(bot.metrics(), "amibot_outbox_pending") >= 1
    finally:
        slack.up()
    slack.wait_for(lambda s: len(s.posts()) >= 2, timeout=30, what="notices once Slack is back")
    wait_until(lambda: metric(bot.metrics(), "amibot_outbox_pending") == 0, what="outbox drained")
    wait_polls(bot, 5)
    assert_one_notice_each(slack, image_id, ("CGENERAL", "COPS"))
    assert len(slack.posts()) == 2


def test_kill_9_after_slack_took_the_post_but_before_it_was_recorded(
    start_bot: Callable[..., BotProcess],
    slack: Any,
    pending_images: Any,
    instance: str,
    redis_srv: Any,
    prefix: str,
) -> None:
    """Slack holds chat.postMessage; the bot dies waiting; Slack then posts it. The new process
    finds the notice in the channel's history (by its metadata) and does not post it again."""
    bot = start_bot()
    job_id = job_id_of(bot.command(f"create {instance} --name 'web held 1'", slack.new_response_url()))
    image_id = tracked_image(pending_images, job_id)["ImageId"]
    redis = redis_srv.client()
    wait_tracking(redis, prefix, job_id)

    slack.fail_next("chat.postMessage", "timeout", hold_seconds=2.5)
    set_image_state(pending_images, REGION, image_id, "available")
    item_key = f"{prefix}outbox:item:notice:{job_id}:{REGION}:available@CGENERAL"
    # the fault is taken when the request arrives: from then on the fake Slack holds it
    wait_until(lambda: slack.pending_faults == 0, timeout=15, what="chat.postMessage held by Slack")
    raw = redis.get(item_key)
    assert raw and json.loads(raw)["sending_since"], raw  # marked "sending" before the call
    bot.kill()
    slack.wait_for(lambda s: s.posts("CGENERAL"), timeout=10, what="the held post applied")
    assert redis.get(item_key) is not None and redis.get(item_key).startswith("{"), "recorded as sent?"

    bot.start()
    wait_until(lambda: redis.get(item_key) == "sent", timeout=15, what="the notice recorded as sent")
    wait_polls(bot, 3)
    assert_one_notice_each(slack, image_id, ("CGENERAL",))
    assert slack.calls("conversations.history"), "the new process did not look for the earlier post"


def test_metrics_are_prometheus_text(
    start_bot: Callable[..., BotProcess], slack: Any, moto: Any, instance: str
) -> None:
    bot = start_bot()
    job_id = job_id_of(bot.command(f"create {instance} --name 'web metrics 1'", slack.new_response_url()))
    slack.wait_for(lambda s: s.posts("CGENERAL"), timeout=15, what="the notice")
    resp = bot.get("/metrics")
    assert resp.status == 200 and resp.headers["content-type"].startswith("text/plain"), resp
    assert "# TYPE amibot_jobs gauge" in resp.text
    assert "# TYPE amibot_ack_seconds histogram" in resp.text
    values = bot.metrics()
    assert metric(values, "amibot_ack_seconds_count", kind="http") >= 1
    wait_until(
        lambda: metric(bot.metrics(), "amibot_jobs", kind="create", state="succeeded") >= 1,
        what=f"{job_id} counted as succeeded",
    )
    assert metric(values, "amibot_aws_calls_total", operation="CreateImage") == 1


def test_redis_hangs_while_the_image_becomes_available_then_one_notice(
    start_bot: Callable[..., BotProcess], slack: Any, pending_images: Any, instance: str, prefix: str
) -> None:
    """Redis stops answering (SIGSTOP: connections stay open, nothing is lost) while the image is
    pending and becomes available; once Redis answers again, the bot carries on by itself."""
    with redis_server() as own_redis:  # not the session's: freezing it disturbs no other test
        assert own_redis.process is not None
        bot = start_bot(REDIS_URL=own_redis.url, AMIBOT_NOTIFY_CHANNEL="COPS")
        job_id = job_id_of(bot.command(f"create {instance} --name 'web frozen 1'", slack.new_response_url()))
        image_id = tracked_image(pending_images, job_id)["ImageId"]
        redis = own_redis.client()
        wait_tracking(redis, prefix, job_id)

        seen = bot.log_text().count("state store unavailable")
        os.kill(own_redis.process.pid, signal.SIGSTOP)
        try:
            set_image_state(pending_images, REGION, image_id, "available")
            wait_until(
                lambda: bot.log_text().count("state store unavailable") > seen,
                timeout=15,
                what="the bot's background work failing on Redis",
            )
            assert slack.posts() == []
        finally:
            os.kill(own_redis.process.pid, signal.SIGCONT)

        wait_until(lambda: bot.get("/healthz").status == 200, timeout=15, what="/healthz 200 again")
        slack.wait_for(lambda s: len(s.posts()) >= 2, timeout=20, what="notices after Redis is back")
        wait_polls(bot, 5)
        assert_one_notice_each(slack, image_id, ("CGENERAL", "COPS"))
        assert len(slack.posts()) == 2
