"""The pure rules of tracking: what each DescribeImages observation does to a job and its notices."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.images import Image
from bot.messages import Delivery
from bot.models import InvalidTransition, Job, JobKind, JobState, Target, TargetState
from bot.tracker import TrackPolicy, observe, quiet, retrack, watched

T0 = 1_800_000_000.0
POLICY = TrackPolicy(notfound_grace=300, notify_channel="CNOTIFY")


def tracking_job(*regions: str, kind: JobKind = JobKind.CREATE, channel: str = "CASK") -> Job:
    targets = tuple(
        Target(region=r, state=TargetState.PENDING, image_id=f"ami-{i:017x}", started_at=T0)
        for i, r in enumerate(regions or ("us-east-1",))
    )
    return Job(
        id="j-abc123",
        kind=kind,
        requester="U1",
        channel=channel,
        region=targets[0].region,
        created_at=T0,
        state=JobState.TRACKING,
        params={"name": "web-golden", "instance_id": "i-0123456789abcdef0"},
        targets=targets,
        deadline=T0 + 12 * 3600,
    )


def image(state: str, image_id: str = "ami-00000000000000000", region: str = "us-east-1") -> Image:
    return Image(
        image_id=image_id, name="web-golden", state=state, creation_date=datetime.now(UTC), region=region
    )


def test_pending_image_changes_nothing() -> None:
    assert observe(tracking_job(), "us-east-1", image("pending"), T0 + 60, POLICY) is None


def test_available_image_finishes_the_job_with_one_notice_per_destination() -> None:
    result = observe(tracking_job(), "us-east-1", image("available"), T0 + 2460, POLICY)
    assert result is not None
    job, effects = result
    assert job.state is JobState.SUCCEEDED
    assert job.targets[0].state is TargetState.AVAILABLE
    assert [n.channel for n in effects.notices] == ["CASK", "CNOTIFY"]
    assert {n.kind for n in effects.notices} == {Delivery.POST}
    text = effects.notices[0].text
    for fact in ("ami-00000000000000000", "web-golden", "us-east-1", "available", "41m", "<@U1>", "j-abc123"):
        assert fact in text
    assert effects.notices[0].fallback_user == "U1"  # the asking channel falls back to a DM
    assert effects.notices[1].fallback_user is None
    assert effects.audit[0].action == "image.available"


def test_notice_ids_are_deterministic_so_a_second_enqueue_is_a_no_op() -> None:
    first = observe(tracking_job(), "us-east-1", image("available"), T0 + 10, POLICY)
    again = observe(tracking_job(), "us-east-1", image("available"), T0 + 99, POLICY)
    assert first and again
    assert [n.id for n in first[1].notices] == [n.id for n in again[1].notices]


def test_notify_channel_equal_to_asking_channel_gets_one_notice() -> None:
    result = observe(tracking_job(channel="CNOTIFY"), "us-east-1", image("available"), T0 + 10, POLICY)
    assert result is not None
    assert [n.channel for n in result[1].notices] == ["CNOTIFY"]


def test_failed_image_fails_the_job_and_says_so() -> None:
    result = observe(tracking_job(), "us-east-1", image("failed"), T0 + 10, POLICY)
    assert result is not None
    job, effects = result
    assert job.state is JobState.FAILED
    assert "failed" in effects.notices[0].text


def test_not_found_right_after_creation_waits_for_the_grace_period() -> None:
    job = tracking_job()
    first = observe(job, "us-east-1", None, T0 + 5, POLICY)
    assert first is not None
    job, effects = first
    assert job.targets[0].missing_since == T0 + 5 and not effects.notices
    assert observe(job, "us-east-1", None, T0 + 200, POLICY) is None  # still within grace: nothing written
    # it shows up: the missing mark is cleared
    seen = observe(job, "us-east-1", image("pending"), T0 + 250, POLICY)
    assert seen is not None and seen[0].targets[0].missing_since is None
    # never shows up: failed after the grace period
    gone = observe(job, "us-east-1", None, T0 + 5 + 300, POLICY)
    assert gone is not None
    assert gone[0].state is JobState.FAILED and gone[0].targets[0].error == "image not found"


def test_max_wait_gives_a_still_pending_notice_and_retrack_resumes() -> None:
    job = tracking_job()
    late = observe(job, "us-east-1", image("pending"), job.deadline + 1, POLICY)
    assert late is not None
    job, effects = late
    assert job.state is JobState.TIMED_OUT
    assert "still pending" in effects.notices[0].text and "/ami status j-abc123" in effects.notices[0].text
    again = retrack(job, job.deadline + 100, 3600)
    assert again.state is JobState.TRACKING and again.targets[0].state is TargetState.PENDING
    assert again.deadline == job.deadline + 100 + 3600
    done = observe(again, "us-east-1", image("available"), again.deadline - 1, POLICY)
    assert done is not None and done[0].state is JobState.SUCCEEDED
    # the "available" notice is a different notice from the "still pending" one
    assert {n.id for n in done[1].notices}.isdisjoint({n.id for n in effects.notices})


def test_a_copy_finishes_only_when_every_region_is_done() -> None:
    job = tracking_job("eu-west-1", "ap-southeast-2", kind=JobKind.COPY)
    first = observe(job, "eu-west-1", image("available"), T0 + 10, POLICY)
    assert first is not None and first[0].state is JobState.TRACKING
    second = observe(first[0], "ap-southeast-2", image("failed"), T0 + 20, POLICY)
    assert second is not None and second[0].state is JobState.FAILED


def test_finished_jobs_ignore_further_observations() -> None:
    result = observe(tracking_job(), "us-east-1", image("available"), T0 + 10, POLICY)
    assert result is not None
    assert observe(result[0], "us-east-1", image("failed"), T0 + 20, POLICY) is None


def test_transitions_outside_the_lifecycle_are_refused() -> None:
    job = tracking_job()
    with pytest.raises(InvalidTransition):
        job.to(JobState.RUNNING)
    with pytest.raises(InvalidTransition):
        job.targets[0].to(TargetState.REQUESTED)


def test_job_round_trips_through_json_data() -> None:
    job = tracking_job("eu-west-1", "us-east-1", kind=JobKind.COPY)
    assert Job.from_dict(job.to_dict()) == job


def test_notice_blocks_carry_the_facts_and_a_plain_text_fallback() -> None:
    result = observe(tracking_job(), "us-east-1", image("available"), T0 + 125, POLICY)
    assert result is not None
    notice = result[1].notices[0]
    assert notice.text.startswith(
        "✅ AMI `ami-00000000000000000` (web-golden) is available in us-east-1 after 2m5s"
    )
    section, facts, context = notice.blocks or []
    assert section["type"] == "section" and section["text"]["text"] == notice.text
    shown = {f["text"].split("\n")[0].strip("*"): f["text"].split("\n")[1] for f in facts["fields"]}
    assert shown == {
        "AMI": "`ami-00000000000000000`",
        "Name": "web-golden",
        "Region": "us-east-1",
        "State": "available",
        "Elapsed": "2m5s",
        "Requested by": "<@U1>",
    }
    assert context["type"] == "context" and "job j-abc123" in context["elements"][0]["text"]


@settings(max_examples=300, deadline=None)
@given(
    state=st.sampled_from(["pending", "available", "failed", "error", "transient", "deregistered", None]),
    missing=st.one_of(st.none(), st.floats(0, 1000)),
    offset=st.floats(0, 13 * 3600),
)
def test_the_polls_fast_path_never_skips_a_change(
    state: str | None, missing: float | None, offset: float
) -> None:
    """`quiet` lets the tracker skip the transaction; it must only do so when `observe` changes nothing."""
    job = tracking_job()
    job = job.with_target(replace(job.targets[0], missing_since=None if missing is None else T0 + missing))
    seen = None if state is None else image(state)
    now = T0 + offset
    (w,) = watched(job)
    if quiet(w, seen, now):
        assert observe(job, "us-east-1", seen, now, POLICY) is None
