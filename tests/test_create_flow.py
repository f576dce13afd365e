"""`/ami create` through the real services: Redis (real server), moto (server), fake Slack (HTTP)."""

from __future__ import annotations

import itertools
from typing import Any

from bot.context import Caller
from bot.models import JobState
from tests.conftest import set_image_state
from tests.peers import wait_until

ASKER = Caller(user="UASKER", channel="CGENERAL", team="T0001")


def ask(runtime: Any, slack: Any, text: str, caller: Caller = ASKER) -> tuple[str, str]:
    """Run a command as the handler would; returns (ack text, response url)."""
    url = slack.new_response_url()
    caller = Caller(user=caller.user, channel=caller.channel, team=caller.team, response_url=url)
    return runtime.services.commands.handle(text, caller).text, url


def job_id_of(text: str) -> str:
    import re

    match = re.search(r"j-[0-9a-f]{6}", text)
    assert match, text
    return match.group(0)


def test_create_tracks_a_pending_image_and_notices_once(
    bot: Any, slack: Any, pending_images: Any, instance: str
) -> None:
    runtime = bot(amibot_notify_channel="COPS")
    ack, url = ask(runtime, slack, f"create {instance} --description 'nightly build' --tag team=web")
    job_id = job_id_of(ack)
    assert "creating an image of" in ack

    job = wait_until(
        lambda: (j := runtime.jobs.get(job_id)) and j.state is JobState.TRACKING and j, what="tracking"
    )
    image_id = job.targets[0].image_id
    ec2 = pending_images.client("ec2")
    image = ec2.describe_images(ImageIds=[image_id])["Images"][0]
    assert image["State"] == "pending"
    assert image["Name"].startswith("web-20")  # default name: Name tag + UTC stamp
    tags = {t["Key"]: t["Value"] for t in image["Tags"]}
    assert tags == {"team": "web", "amibot:requested-by": "UASKER", "amibot:job": job_id}
    # the requester hears that CreateImage started (response_url)
    started = slack.wait_for(lambda s: s.responses(url), what="started response")
    assert image_id in started[0].params["text"]

    # several polls while pending: no notice
    polls = runtime.services.metrics.polls._value.get()
    wait_until(lambda: runtime.services.metrics.polls._value.get() >= polls + 3, what="three polls")
    assert slack.posts() == []

    set_image_state(pending_images, "us-east-1", image_id, "available")
    slack.wait_for(lambda s: len(s.posts()) == 2, what="two notices")
    wait_until(lambda: runtime.jobs.get(job_id).state is JobState.SUCCEEDED, what="job succeeded")
    by_channel = {p.params["channel"]: p.params["text"] for p in slack.posts()}
    assert set(by_channel) == {"CGENERAL", "COPS"}
    for text in by_channel.values():
        assert image_id in text and "us-east-1" in text and "available" in text and "<@UASKER>" in text

    # more polls: still exactly one notice per destination
    polls = runtime.services.metrics.polls._value.get()
    wait_until(lambda: runtime.services.metrics.polls._value.get() >= polls + 3, what="three more polls")
    assert len(slack.posts()) == 2


def test_bad_instance_is_one_readable_line_and_no_image(bot: Any, slack: Any, moto: Any) -> None:
    runtime = bot()
    ack, url = ask(runtime, slack, "create i-0123456789abcdef0")
    job_id = job_id_of(ack)
    reply = slack.wait_for(lambda s: s.responses(url), what="failure response")
    assert "i-0123456789abcdef0" in reply[0].params["text"] and "not found" in reply[0].params["text"]
    assert "Traceback" not in reply[0].params["text"]
    assert runtime.jobs.get(job_id).state is JobState.FAILED
    assert moto.client("ec2").describe_images(Owners=["self"])["Images"] == []


def test_slack_rate_limit_three_times_then_one_notice(bot: Any, slack: Any, instance: str) -> None:
    slack.fail_next("chat.postMessage", "ratelimited", times=3, retry_after=1)
    runtime = bot()
    ack, _ = ask(runtime, slack, f"create {instance} --name 'web golden 1'")
    job_id = job_id_of(ack)
    slack.wait_for(lambda s: s.posts("CGENERAL"), timeout=15, what="notice after 429s")
    attempts = slack.calls("chat.postMessage")
    assert [c.status for c in attempts] == [429, 429, 429, 200]
    gaps = [b.time - a.time for a, b in itertools.pairwise(attempts)]
    assert all(gap >= 0.9 for gap in gaps), gaps  # Retry-After honoured
    wait_until(lambda: runtime.jobs.get(job_id).state is JobState.SUCCEEDED)
    assert len(slack.posts("CGENERAL")) == 1


def test_image_not_found_right_after_creation_keeps_waiting(
    bot: Any, slack: Any, pending_images: Any, instance: str, monkeypatch: Any
) -> None:
    """DescribeImages does not see a new image for a while (eventual consistency)."""
    from moto.ec2.models.amis import AmiBackend

    hidden: set[str] = set()
    original = AmiBackend.describe_images

    def describe(self: Any, *args: Any, **kwargs: Any) -> Any:
        return [image for image in original(self, *args, **kwargs) if image.id not in hidden]

    monkeypatch.setattr(AmiBackend, "describe_images", describe)
    original_create = AmiBackend.create_image

    def create(self: Any, *args: Any, **kwargs: Any) -> Any:
        ami = original_create(self, *args, **kwargs)
        hidden.add(ami.id)
        return ami

    monkeypatch.setattr(AmiBackend, "create_image", create)
    runtime = bot(amibot_notfound_grace="30s")
    ack, _ = ask(runtime, slack, f"create {instance}")
    job_id = job_id_of(ack)
    job = wait_until(
        lambda: (j := runtime.jobs.get(job_id)) and j.targets[0].missing_since and j, what="missing"
    )
    assert job.state is JobState.TRACKING
    hidden.clear()
    set_image_state(pending_images, "us-east-1", job.targets[0].image_id, "available")
    slack.wait_for(lambda s: s.posts("CGENERAL"), what="notice once visible")
    assert runtime.jobs.get(job_id).state is JobState.SUCCEEDED


def test_private_channel_notice_goes_to_the_requester_as_a_dm(bot: Any, slack: Any, instance: str) -> None:
    runtime = bot()
    ack, _ = ask(
        runtime, slack, f"create {instance}", Caller(user="UASKER", channel="CPRIVATE", team="T0001")
    )
    slack.wait_for(lambda s: s.posts("UASKER"), what="DM fallback")
    assert job_id_of(ack) in slack.posts("UASKER")[0].params["text"]
    assert not [p for p in slack.posts() if p.params["channel"] == "CPRIVATE" and p.ok]


def test_status_lists_in_flight_jobs_and_retracks_a_timed_out_one(
    bot: Any, slack: Any, pending_images: Any, instance: str
) -> None:
    runtime = bot(amibot_max_wait="1s")
    ack, _ = ask(runtime, slack, f"create {instance}")
    job_id = job_id_of(ack)
    assert job_id in ask(runtime, slack, "status")[0]
    slack.wait_for(lambda s: s.posts("CGENERAL"), what="still pending notice")
    assert "still pending" in slack.posts("CGENERAL")[0].params["text"]
    assert runtime.jobs.get(job_id).state is JobState.TIMED_OUT
    again, _ = ask(runtime, slack, f"status {job_id}")
    assert "tracked again" in again
    job = runtime.jobs.get(job_id)
    assert job.state is JobState.TRACKING
    set_image_state(pending_images, "us-east-1", job.targets[0].image_id, "available")
    slack.wait_for(lambda s: len(s.posts("CGENERAL")) == 2, what="available notice")
    assert "available" in slack.posts("CGENERAL")[1].params["text"]


def aws_checks_image_names(monkeypatch: Any) -> None:
    """moto lets two images share a name; AWS answers InvalidAMIName.Duplicate (per account, region)."""
    from moto.ec2.exceptions import EC2ClientError
    from moto.ec2.models.amis import AmiBackend

    original = AmiBackend.create_image

    def create_image(self: Any, instance_id: str, name: str, *args: Any, **kwargs: Any) -> Any:
        if any(ami.name == name for ami in self.amis.values()):
            raise EC2ClientError(
                "InvalidAMIName.Duplicate", f"AMI name {name} is already in use by AMI ami-x"
            )
        return original(self, instance_id, name, *args, **kwargs)

    monkeypatch.setattr(AmiBackend, "create_image", create_image)


def named_image(moto: Any, name: str, tags: dict[str, str]) -> str:
    ec2 = moto.client("ec2")
    image_id = str(ec2.register_image(Name=name)["ImageId"])
    if tags:
        ec2.create_tags(Resources=[image_id], Tags=[{"Key": k, "Value": v} for k, v in tags.items()])
    return image_id


def test_a_duplicate_name_that_is_the_jobs_own_image_is_tracked_not_failed(
    bot: Any, slack: Any, moto: Any, instance: str, monkeypatch: Any
) -> None:
    """An earlier CreateImage of this job worked but its answer was lost; the retry reuses the
    name and AWS calls it a duplicate: the image is the job's own (its amibot:job tag), so it is
    tracked and announced, and no second image is made."""
    aws_checks_image_names(monkeypatch)
    runtime = bot(start=False)
    ack, _ = ask(runtime, slack, f"create {instance} --name web-dup")
    job_id = job_id_of(ack)
    earlier = named_image(moto, "web-dup", {"amibot:job": job_id})
    runtime.start_background()

    def succeeded() -> Any:
        job = runtime.jobs.get(job_id)
        return job if job is not None and job.state is JobState.SUCCEEDED else None

    job = wait_until(succeeded, timeout=10, what="the job to succeed")
    assert job.targets[0].image_id == earlier
    images = moto.client("ec2").describe_images(Filters=[{"Name": "name", "Values": ["web-dup"]}])["Images"]
    assert [i["ImageId"] for i in images] == [earlier]
    slack.wait_for(lambda s: [p for p in s.posts("CGENERAL") if earlier in p.params["text"]], what="notice")


def test_a_name_another_image_has_fails_the_job_at_once_with_the_reason(
    bot: Any, slack: Any, moto: Any, instance: str, monkeypatch: Any
) -> None:
    aws_checks_image_names(monkeypatch)
    named_image(moto, "web-taken", {})
    runtime = bot()
    ack, _ = ask(runtime, slack, f"create {instance} --name web-taken")
    job_id = job_id_of(ack)

    def failed() -> Any:
        job = runtime.jobs.get(job_id)
        return job if job is not None and job.state is JobState.FAILED else None

    job = wait_until(failed, timeout=5, what="the job to fail")
    assert "already in use" in (job.error or ""), job.error
    assert int(job.result.get("attempts", 0)) == 1  # no retries: the name belongs to another image
