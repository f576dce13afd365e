"""`/ami copy` end to end: a signed slash command to the real `amibot run --http` process, one
CopyImage per destination region in the moto server, one notice per region and a summary."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.conftest import set_image_state
from tests.e2e.harness import BotProcess, ack_text, images_of_job, job_id_of, notices_for, tags_of
from tests.peers import MotoServer, wait_until

pytestmark = pytest.mark.e2e

REGIONS = ("eu-west-1", "ap-southeast-2")


def test_copy_to_two_regions_notices_each_region_once_then_a_summary(
    start_bot: Callable[..., BotProcess], slack: Any, pending_images: MotoServer
) -> None:
    moto = pending_images
    source = moto.client("ec2", "us-east-1").register_image(Name="web-golden-2026-11-01")["ImageId"]
    bot = start_bot(AMIBOT_REGIONS="us-east-1,eu-west-1,ap-southeast-2")

    resp = bot.command(f"copy {source} --to {','.join(REGIONS)}", slack.new_response_url())
    assert resp.status == 200 and resp.seconds < 3, resp
    job_id = job_id_of(resp)
    assert all(region in ack_text(resp) for region in REGIONS), ack_text(resp)

    copies = {}
    for region in REGIONS:  # one copy in each destination, made there, pending, tagged with the job
        found = wait_until(
            lambda r=region: images_of_job(moto, job_id, r), timeout=15, what=f"copy in {region}"
        )
        assert len(found) == 1 and found[0]["State"] == "pending", found
        assert tags_of(found[0])["amibot:requested-by"] == "UASKER"
        copies[region] = found[0]["ImageId"]
    assert not images_of_job(moto, job_id, "us-east-1")  # nothing was copied into the source region

    set_image_state(moto, REGIONS[0], copies[REGIONS[0]], "available")
    first = slack.wait_for(
        lambda s: notices_for(s, copies[REGIONS[0]], "CGENERAL"), timeout=15, what="notice 1"
    )
    assert f"available in {REGIONS[0]}" in first[0].params["text"]
    assert not [p for p in slack.posts("CGENERAL") if "finished" in p.params["text"]]  # one region to go

    set_image_state(moto, REGIONS[1], copies[REGIONS[1]], "available")
    slack.wait_for(
        lambda s: len(s.posts("CGENERAL")) == 3, timeout=15, what="the second notice and the summary"
    )
    texts = [p.params["text"] for p in slack.posts("CGENERAL")]
    for region in REGIONS:
        assert sum(copies[region] in t and f"available in {region}" in t for t in texts) == 1, texts
    summary = [t for t in texts if "finished: 2 of 2 regions available" in t]
    assert len(summary) == 1 and job_id in summary[0], texts
