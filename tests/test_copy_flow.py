"""`/ami copy` through the real services: Redis (real server), moto (server), fake Slack (HTTP).

moto 5.2.5 accepts ClientToken, TagSpecifications and CopyImageTags on CopyImage but ignores all
three (every call makes a new image, untagged). So amibot tags each copy with CreateTags, and the
tests check both idempotency paths: the tag lookup (a worker that died after the copy) against plain
moto, and the ClientToken (an answer lost in transit) against moto taught the token as AWS documents it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ReadTimeoutError

from bot import copying as copying_module
from bot.aws.clients import AwsClients
from bot.aws.ec2 import Ec2
from bot.copying import (
    CLIENT_TOKEN_MAX,
    Copying,
    CopySettings,
    Outcome,
    Step,
    apply_outcomes,
    client_token,
    queued_message,
    source_problem,
)
from bot.images import Image
from bot.messages import Delivery
from bot.models import Job, JobKind, JobState, Target, TargetState
from bot.notices import copy_summary, copy_summary_text, image_notice_text
from bot.tracker import TrackPolicy, observe
from tests.conftest import set_image_state
from tests.peers import wait_until
from tests.test_create_flow import ask, job_id_of

T0 = 1_800_000_000.0
POLICY = TrackPolicy(notfound_grace=300, notify_channel="COPS")


# ---------------------------------------------------------------------------------------------------
# helpers and fixtures


@pytest.fixture
def source(moto: Any, instance: str) -> str:
    """An available image "web-golden" in us-east-1 with a user tag."""
    ec2 = moto.client("ec2")
    image_id = str(
        ec2.create_image(
            InstanceId=instance,
            Name="web-golden",
            Description="golden web image",
            TagSpecifications=[{"ResourceType": "image", "Tags": [{"Key": "team", "Value": "web"}]}],
        )["ImageId"]
    )
    set_image_state(moto, "us-east-1", image_id, "available")
    return image_id


def own_images(moto: Any, region: str) -> list[dict[str, Any]]:
    return list(moto.client("ec2", region).describe_images(Owners=["self"])["Images"])


def tags_of(image: dict[str, Any]) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in image.get("Tags", [])}


def tracking(runtime: Any, job_id: str, *regions: str) -> Job:
    """Wait until the job's targets in `regions` have image ids."""

    def ready() -> Job | None:
        job = runtime.jobs.get(job_id)
        if job and all(job.target(r).state is TargetState.PENDING for r in regions):
            return job
        return None

    return wait_until(ready, what=f"copies pending in {regions}")


def polls_pass(runtime: Any, n: int = 3) -> None:
    polls = runtime.services.metrics.polls._value.get()
    wait_until(lambda: runtime.services.metrics.polls._value.get() >= polls + n, what=f"{n} polls")


@pytest.fixture
def moto_client_tokens(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Teach moto's CopyImage the ClientToken, as AWS documents it: the same token (same account
    and region) returns the first call's image instead of copying again. Yields every token seen."""
    from moto.ec2.responses.amis import AmisResponse

    seen: list[str] = []
    made: dict[tuple[str, str, str], str] = {}
    lock = threading.Lock()
    original = AmisResponse.copy_image

    def copy_image(self: Any) -> Any:
        from moto.core.responses import ActionResult

        token = self._get_param("ClientToken") or ""
        key = (self.current_account, self.region, token)
        with lock:
            seen.append(token)
            if token and key in made:
                return ActionResult({"ImageId": made[key]})
            result = original(self)
            if token:
                made[key] = result.result["ImageId"]
            return result

    monkeypatch.setattr(AmisResponse, "copy_image", copy_image)
    yield seen


# ---------------------------------------------------------------------------------------------------
# integration


def test_copy_to_two_regions_tracks_each_copy_and_sums_up_once(
    bot: Any, slack: Any, source: str, pending_images: Any
) -> None:
    runtime = bot(amibot_notify_channel="COPS")
    ack, url = ask(runtime, slack, f"copy {source} --to eu-west-1,ap-southeast-2 --from us-east-1")
    job_id = job_id_of(ack)
    assert "eu-west-1, ap-southeast-2" in ack and source in ack

    job = tracking(runtime, job_id, "eu-west-1", "ap-southeast-2")
    assert job.state is JobState.TRACKING
    copies = {}
    for region in ("eu-west-1", "ap-southeast-2"):
        images = own_images(pending_images, region)
        assert [i["ImageId"] for i in images] == [job.target(region).image_id]  # one copy, in its region
        image = images[0]
        assert image["State"] == "pending"
        assert image["Name"] == "web-golden"  # default name: the source's
        assert image["Description"] == "golden web image"
        tags = tags_of(image)
        assert tags["amibot:job"] == job_id and tags["amibot:requested-by"] == "UASKER"
        copies[region] = image["ImageId"]
    assert [i["ImageId"] for i in own_images(pending_images, "us-east-1")] == [source]
    started = slack.wait_for(lambda s: s.responses(url), what="started response")
    assert all(ident in started[0].params["text"] for ident in copies.values())

    status, _ = ask(runtime, slack, "status")
    assert f"us-east-1 → eu-west-1 `{copies['eu-west-1']}` pending" in status
    assert f"us-east-1 → ap-southeast-2 `{copies['ap-southeast-2']}` pending" in status
    polls_pass(runtime)
    assert slack.posts() == []

    set_image_state(pending_images, "eu-west-1", copies["eu-west-1"], "available")
    slack.wait_for(lambda s: len(s.posts("CGENERAL")) == 1, what="eu-west-1 notice")
    first = slack.posts("CGENERAL")[0].params["text"]
    assert copies["eu-west-1"] in first and "available in eu-west-1" in first and source in first
    assert runtime.jobs.get(job_id).state is JobState.TRACKING

    set_image_state(pending_images, "ap-southeast-2", copies["ap-southeast-2"], "available")
    for channel in ("CGENERAL", "COPS"):
        slack.wait_for(lambda s, c=channel: len(s.posts(c)) == 3, what=f"notices and summary in {channel}")
    wait_until(lambda: runtime.jobs.get(job_id).state is JobState.SUCCEEDED, what="job succeeded")
    for channel in ("CGENERAL", "COPS"):
        texts = [p.params["text"] for p in slack.posts(channel)]
        region_notices = [t for t in texts if "finished:" not in t]
        assert len(region_notices) == 2
        assert {r for r, ident in copies.items() if any(ident in t for t in region_notices)} == set(copies)
        (summary,) = [t for t in texts if "finished:" in t]
        assert "2 of 2 regions available" in summary
        assert all(f"→ {r} `{ident}` available" in summary for r, ident in copies.items())

    polls_pass(runtime)
    assert len(slack.posts()) == 6  # 2 regions × 2 channels + the summary in each


def test_worker_dying_after_the_copy_makes_no_second_copy(
    bot: Any, slack: Any, moto: Any, source: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Plain moto (ClientToken ignored): the retry finds the copy by its `amibot:job` tag."""
    runtime = bot(start=False)
    ack, _ = ask(runtime, slack, f"copy {source} --to eu-west-1")
    job_id = job_id_of(ack)
    copying = Copying(runtime.jobs, Ec2(AwsClients({})), CopySettings(max_wait=3600, retry_base=0.1), POLICY)
    real_apply = copying_module.apply_outcomes

    def die(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("worker died before recording the copy")

    monkeypatch.setattr(copying_module, "apply_outcomes", die)
    with pytest.raises(RuntimeError):
        copying.start(runtime.jobs.get(job_id))
    (made,) = own_images(moto, "eu-west-1")  # AWS made the copy; Redis does not know it
    assert runtime.jobs.get(job_id).target("eu-west-1").state is TargetState.REQUESTED

    monkeypatch.setattr(copying_module, "apply_outcomes", real_apply)
    assert copying.start(runtime.jobs.get(job_id)) is None
    job = runtime.jobs.get(job_id)
    assert job.state is JobState.TRACKING
    assert job.target("eu-west-1").image_id == made["ImageId"]
    assert [i["ImageId"] for i in own_images(moto, "eu-west-1")] == [made["ImageId"]]


def test_lost_copy_answer_is_retried_with_the_same_client_token(
    settings_for: Any, slack: Any, pending_images: Any, source: str, moto_client_tokens: list[str]
) -> None:
    """AWS copies, then the answer times out on the way back: the retry gets the same copy."""
    from bot.app import build

    clients = AwsClients({})
    lost = threading.Event()

    def lose_the_answer(**_: Any) -> None:
        if not lost.is_set():
            lost.set()
            raise ReadTimeoutError(endpoint_url=pending_images.url)

    clients.ec2(None, "eu-west-1").meta.events.register("after-call.ec2.CopyImage", lose_the_answer)
    runtime = build(settings_for(), aws_clients=clients)
    runtime.start_background()
    try:
        ack, _ = ask(runtime, slack, f"copy {source} --to eu-west-1,ap-southeast-2")
        job_id = job_id_of(ack)
        job = tracking(runtime, job_id, "eu-west-1", "ap-southeast-2")
        assert lost.is_set()
        (copy,) = own_images(pending_images, "eu-west-1")
        assert job.target("eu-west-1").image_id == copy["ImageId"]
        assert tags_of(copy)["amibot:job"] == job_id
        eu = client_token(job_id, "eu-west-1")
        assert moto_client_tokens.count(eu) == 2  # the lost call and its retry, with one token
        assert moto_client_tokens.count(client_token(job_id, "ap-southeast-2")) == 1
        assert len(own_images(pending_images, "ap-southeast-2")) == 1
    finally:
        runtime.stop()


def test_copy_limit_refusal_is_queued_told_once_then_copied(
    bot: Any, slack: Any, source: str, pending_images: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from moto.ec2.exceptions import EC2ClientError
    from moto.ec2.models.amis import AmiBackend

    refusals = {"eu-west-1": 3}
    original = AmiBackend.copy_image

    def copy_image(self: Any, *args: Any, **kwargs: Any) -> Any:
        if refusals.get(self.region_name, 0) > 0:
            refusals[self.region_name] -= 1
            raise EC2ClientError(
                "ResourceLimitExceeded",
                "Too many snapshot copies in progress. The limit is 5 for this destination region.",
            )
        return original(self, *args, **kwargs)

    monkeypatch.setattr(AmiBackend, "copy_image", copy_image)
    runtime = bot()
    ack, url = ask(runtime, slack, f"copy {source} --to eu-west-1,ap-southeast-2")
    job_id = job_id_of(ack)

    # the other region goes on; the refused one waits as QUEUED and the requester hears it once
    job = tracking(runtime, job_id, "ap-southeast-2")
    texts = slack.wait_for(
        lambda s: [r.params["text"] for r in s.responses(url) if "queued" in r.params["text"]],
        what="queued response",
    )
    assert "queued: AWS allows only 5 concurrent copies into eu-west-1; amibot will retry" in texts[0]
    job = tracking(runtime, job_id, "eu-west-1", "ap-southeast-2")
    assert refusals["eu-west-1"] == 0  # refused three times, then copied
    (copy,) = own_images(pending_images, "eu-west-1")
    assert job.target("eu-west-1").image_id == copy["ImageId"]
    assert len([r for r in slack.responses(url) if "queued" in r.params["text"]]) == 1

    for region in ("eu-west-1", "ap-southeast-2"):
        set_image_state(pending_images, region, job.target(region).image_id, "available")
    slack.wait_for(lambda s: len(s.posts("CGENERAL")) == 3, what="two notices and the summary")
    texts = [p.params["text"] for p in slack.posts("CGENERAL")]
    assert sum(copy["ImageId"] in t and "available in eu-west-1" in t for t in texts) == 1
    polls_pass(runtime)
    assert len(slack.posts("CGENERAL")) == 3


def test_a_copy_refused_until_max_wait_fails_that_region_with_the_reason(
    bot: Any, slack: Any, source: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from moto.ec2.exceptions import EC2ClientError
    from moto.ec2.models.amis import AmiBackend

    def refuse(self: Any, *args: Any, **kwargs: Any) -> Any:
        raise EC2ClientError("ResourceLimitExceeded", "Too many copies. The limit is 2 for this region.")

    monkeypatch.setattr(AmiBackend, "copy_image", refuse)
    runtime = bot(amibot_max_wait="1s")
    ack, url = ask(runtime, slack, f"copy {source} --to eu-west-1")
    job_id = job_id_of(ack)
    job = wait_until(lambda: (j := runtime.jobs.get(job_id)) and j.finished and j, what="job finished")
    assert job.state is JobState.FAILED
    assert "AWS still refused the copy" in (job.target("eu-west-1").error or "")
    slack.wait_for(lambda s: len(s.posts("CGENERAL")) == 2, what="region notice and summary")
    assert len([r for r in slack.responses(url) if "queued" in r.params["text"]]) == 1


def test_a_permanent_error_fails_that_region_only(
    bot: Any, slack: Any, source: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from moto.ec2.exceptions import EC2ClientError
    from moto.ec2.models.amis import AmiBackend

    original = AmiBackend.copy_image

    def copy_image(self: Any, *args: Any, **kwargs: Any) -> Any:
        if self.region_name == "eu-west-1":
            raise EC2ClientError("InvalidAMIName.Duplicate", "AMI name web-golden is already in use")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(AmiBackend, "copy_image", copy_image)
    runtime = bot()
    ack, _ = ask(runtime, slack, f"copy {source} --to eu-west-1,ap-southeast-2")
    job_id = job_id_of(ack)
    job = wait_until(lambda: (j := runtime.jobs.get(job_id)) and j.finished and j, what="job finished")
    assert job.state is JobState.FAILED
    assert job.target("eu-west-1").state is TargetState.FAILED
    assert "already in use" in (job.target("eu-west-1").error or "")
    assert job.target("ap-southeast-2").state is TargetState.AVAILABLE  # moto: available at once
    slack.wait_for(lambda s: len(s.posts("CGENERAL")) == 3, what="two notices and the summary")
    texts = [p.params["text"] for p in slack.posts("CGENERAL")]
    assert any("failed in eu-west-1" in t and "Traceback" not in t for t in texts)
    assert any("1 of 2 regions available" in t for t in texts)


def test_missing_source_fails_the_job_with_one_line(bot: Any, slack: Any, moto: Any) -> None:
    runtime = bot()
    ack, url = ask(runtime, slack, "copy ami-0123456789abcdef0 --to eu-west-1")
    job_id = job_id_of(ack)
    reply = slack.wait_for(lambda s: s.responses(url), what="failure response")
    text = reply[0].params["text"]
    assert "ami-0123456789abcdef0 not found in us-east-1" in text and "Traceback" not in text
    assert runtime.jobs.get(job_id).state is JobState.FAILED
    assert own_images(moto, "eu-west-1") == []
    assert slack.posts() == []


# ---------------------------------------------------------------------------------------------------
# pure rules


def copy_job(*regions: str, state: JobState = JobState.QUEUED, **target_changes: Any) -> Job:
    return Job(
        id="j-c0ffee",
        kind=JobKind.COPY,
        requester="U1",
        channel="CASK",
        region="us-east-1",
        created_at=T0,
        state=state,
        params={"image_id": "ami-0123456789abcdef0", "source_region": "us-east-1", "name": "web-golden"},
        targets=tuple(Target(region=r, **target_changes) for r in regions),
        deadline=T0 + 3600,
    )


def test_copy_image_sends_the_idempotent_request_in_the_destination_region() -> None:
    from botocore.stub import Stubber

    clients = AwsClients({})
    client = clients.ec2(None, "eu-west-1")
    with Stubber(client) as stub:
        stub.add_response(
            "copy_image",
            {"ImageId": "ami-00000000000000009"},
            {
                "SourceImageId": "ami-0123456789abcdef0",
                "SourceRegion": "us-east-1",
                "Name": "web-golden",
                "Description": "golden",
                "Encrypted": True,
                "KmsKeyId": "alias/amis",
                "CopyImageTags": True,
                "ClientToken": "amibot-j-7f3a9c-eu-west-1",
            },
        )
        image_id = Ec2(clients).copy_image(
            None,
            "eu-west-1",
            source_image_id="ami-0123456789abcdef0",
            source_region="us-east-1",
            name="web-golden",
            description="golden",
            encrypted=True,
            kms_key="alias/amis",
            client_token=client_token("j-7f3a9c", "eu-west-1"),
        )
        stub.assert_no_pending_responses()
    assert image_id == "ami-00000000000000009"


def test_client_token_is_stable_per_job_and_region_and_fits_ec2() -> None:
    token = client_token("j-7f3a9c", "eu-west-1")
    assert token == client_token("j-7f3a9c", "eu-west-1")
    assert token != client_token("j-7f3a9c", "eu-west-2") != client_token("j-7f3a9d", "eu-west-1")
    long_one = client_token("j-" + "f" * 80, "ap-southeast-2")
    assert len(long_one) <= CLIENT_TOKEN_MAX and long_one.isascii()
    assert long_one == client_token("j-" + "f" * 80, "ap-southeast-2")


def test_queued_message_names_the_limit_when_aws_gives_it() -> None:
    assert queued_message("eu-west-1", "Too many snapshot copies in progress. The limit is 5 for this") == (
        "queued: AWS allows only 5 concurrent copies into eu-west-1; amibot will retry"
    )
    assert "only a few concurrent copies into eu-west-1" in queued_message("eu-west-1", "Limit exceeded")


def test_source_must_exist_and_be_available() -> None:
    from datetime import UTC, datetime

    image = Image(image_id="ami-1", name="n", state="pending", creation_date=datetime.now(UTC), region="r")
    assert "not found in us-east-1" in (source_problem(None, "ami-1", "us-east-1") or "")
    assert "is pending" in (source_problem(image, "ami-1", "us-east-1") or "")
    assert source_problem(Image(**{**image.__dict__, "state": "available"}), "ami-1", "r") is None


def test_outcomes_start_queue_and_fail_targets_each_told_once() -> None:
    job = copy_job("eu-west-1", "ap-southeast-2", "us-west-2")
    outcomes = [
        Outcome("eu-west-1", Step.STARTED, image_id="ami-00000000000000001"),
        Outcome("ap-southeast-2", Step.QUEUED, message="queued: …", retry_at=T0 + 30),
        Outcome("us-west-2", Step.RETRY, retry_at=T0 + 15),
    ]
    result = apply_outcomes(job, outcomes, T0 + 5, POLICY)
    assert result is not None
    job, effects = result
    assert job.state is JobState.TRACKING
    assert [t.state for t in job.targets] == [TargetState.PENDING, TargetState.QUEUED, TargetState.REQUESTED]
    (told,) = effects.notices
    assert told.kind is Delivery.RESPOND and "ami-00000000000000001" in told.text and "queued" in told.text
    # the same refusal again: counted, not told again
    again = apply_outcomes(job, [outcomes[1]], T0 + 40, POLICY)
    assert again is not None and again[1].notices == ()
    assert again[0].result["targets"]["ap-southeast-2"]["refusals"] == 2


def test_last_target_failing_in_the_worker_finishes_the_job_with_the_summary() -> None:
    job = copy_job("eu-west-1", "ap-southeast-2", state=JobState.TRACKING)
    job = job.with_target(
        Target("eu-west-1", TargetState.AVAILABLE, image_id="ami-00000000000000001", finished_at=T0 + 60)
    )
    result = apply_outcomes(job, [Outcome("ap-southeast-2", Step.FAILED, message="nope")], T0 + 99, POLICY)
    assert result is not None
    job, effects = result
    assert job.state is JobState.FAILED
    ids = [n.id for n in effects.notices]
    assert (
        f"summary:{job.id}:{int(job.deadline)}@CASK" in ids
        and f"summary:{job.id}:{int(job.deadline)}@COPS" in ids
    )
    assert any(n.id.startswith(f"notice:{job.id}:ap-southeast-2:failed") for n in effects.notices)


def test_tracker_sends_the_summary_when_the_last_copy_is_available() -> None:
    job = copy_job("eu-west-1", "ap-southeast-2", state=JobState.TRACKING)
    job = job.with_target(Target("eu-west-1", TargetState.PENDING, image_id="ami-00000000000000001"))
    job = job.with_target(Target("ap-southeast-2", TargetState.PENDING, image_id="ami-00000000000000002"))
    from datetime import UTC, datetime

    def seen(image_id: str, region: str) -> Image:
        return Image(image_id, "web-golden", "available", datetime.now(UTC), region)

    first = observe(job, "eu-west-1", seen("ami-00000000000000001", "eu-west-1"), T0 + 60, POLICY)
    assert first is not None
    job, effects = first
    assert not any(n.id.startswith("summary:") for n in effects.notices)
    last = observe(job, "ap-southeast-2", seen("ami-00000000000000002", "ap-southeast-2"), T0 + 90, POLICY)
    assert last is not None
    job, effects = last
    assert job.state is JobState.SUCCEEDED
    assert sum(n.id.startswith("summary:") for n in effects.notices) == 2  # asking and notify channel


def test_summary_and_notice_wording_for_copies() -> None:
    job = copy_job("eu-west-1", "ap-southeast-2", state=JobState.FAILED)
    job = job.with_target(
        Target("eu-west-1", TargetState.AVAILABLE, image_id="ami-00000000000000001", finished_at=T0 + 600)
    )
    job = job.with_target(Target("ap-southeast-2", TargetState.FAILED, finished_at=T0 + 5, error="denied"))
    text = copy_summary_text(job)
    assert text.splitlines()[0].startswith("❌ Copy of `ami-0123456789abcdef0` from us-east-1 (web-golden)")
    assert "1 of 2 regions available" in text
    assert "us-east-1 → eu-west-1 `ami-00000000000000001` available" in text
    assert "us-east-1 → ap-southeast-2 `…` failed — denied" in text
    notice = image_notice_text(job, job.target("eu-west-1"))
    assert notice.startswith(
        "✅ Copy `ami-00000000000000001` (web-golden) of `ami-0123456789abcdef0` from us-east-1 "
        "is available in eu-west-1 after 10m"
    )
    failed = image_notice_text(job, job.target("ap-southeast-2"))
    assert failed.startswith("❌ Copy of `ami-0123456789abcdef0` from us-east-1 failed in ap-southeast-2")
    assert [n.channel for n in copy_summary(job, "CASK")] == ["CASK"]
