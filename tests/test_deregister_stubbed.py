"""Deregistration paths moto cannot play (moto 5.2.5: no deregistration protection, no deprecation,
`DeleteAssociatedSnapshots` ignored, DeleteSnapshot never fails transiently), against botocore's
Stubber: the real `AwsClients` builds the clients, a Stubber is put on the cached ones, and the real
`Deregistering.check` / `Deregistering.execute` run on them with a real Redis behind the stores.
Messages are delivered by the real outbox to the fake Slack, so the tests read what people see.

Every AWS call the code makes must be stubbed in order: an unexpected call fails the test (a Stubber
error is a botocore error, which the code reports as a failed AWS call).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from botocore.exceptions import ReadTimeoutError
from botocore.stub import Stubber
from slack_sdk import WebClient

from bot import store
from bot.approvals import Approval, ApprovalState
from bot.aws.clients import AwsClients
from bot.aws.ec2 import Ec2
from bot.deregistering import CHECK_TASK, Deregistering, DeregisterSettings
from bot.keys import Keys
from bot.models import Job, JobState
from bot.outbox import Outbox
from bot.store.approvals import ApprovalStore
from bot.store.audit import AuditLog
from bot.store.effects import EffectWriter
from bot.store.jobs import JobStore
from bot.store.leases import Leases
from bot.store.outbox import OutboxStore
from bot.store.work import WorkStore
from bot.tasks import Task, Tasks
from tests.conftest import BOT_TOKEN

REGION = "us-east-1"
AMI = "ami-0123456789abcdef0"
OTHER_AMI = "ami-0fedcba9876543210"
SNAP_A = "snap-0aaaaaaaaaaaaaaaa"
SNAP_B = "snap-0bbbbbbbbbbbbbbbb"
PROTECT_TAG = "amibot:keep"


def image(image_id: str = AMI, snapshots: tuple[str, ...] = (SNAP_A,), **extra: Any) -> dict[str, Any]:
    """An image as DescribeImages returns it."""
    return {
        "ImageId": image_id,
        "Name": "web-golden-2026-01-01",
        "State": "available",
        "CreationDate": "2026-01-01T09:30:00.000Z",
        "OwnerId": "123456789012",
        "BlockDeviceMappings": [
            {"DeviceName": f"/dev/xvd{chr(97 + n)}", "Ebs": {"SnapshotId": s, "VolumeSize": 8 * (n + 1)}}
            for n, s in enumerate(snapshots)
        ],
        "Tags": [],
        **extra,
    }


@dataclass
class Rig:
    deregistering: Deregistering
    jobs: JobStore
    approvals: ApprovalStore
    audit: AuditLog
    outbox: Outbox
    ec2: Stubber
    autoscaling: Stubber

    # --- the calls the code is expected to make, in order

    def own_image(self, found: dict[str, Any] | None) -> None:
        """`Ec2.own_image`: DescribeImages by the image-id filter, owned by the account."""
        self.ec2.add_response(
            "describe_images",
            {"Images": [found] if found else []},
            {
                "Filters": [{"Name": "image-id", "Values": [AMI]}],
                "Owners": ["self"],
                "IncludeDeprecated": True,
                "IncludeDisabled": True,
                "MaxResults": 1000,
            },
        )

    def nothing_in_use(self) -> None:
        """`Ec2.uses`: instances, launch templates, launch configurations, auto scaling groups."""
        self.ec2.add_response("describe_instances", {"Reservations": []})
        self.ec2.add_response("describe_launch_templates", {"LaunchTemplates": []})
        self.autoscaling.add_response("describe_launch_configurations", {"LaunchConfigurations": []})
        self.autoscaling.add_response("describe_auto_scaling_groups", {"AutoScalingGroups": []})

    def deregister(self, results: list[dict[str, str]] | None = None) -> None:
        response: dict[str, Any] = {"Return": True}
        if results is not None:
            response["DeleteSnapshotResults"] = results
        self.ec2.add_response(
            "deregister_image", response, {"ImageId": AMI, "DeleteAssociatedSnapshots": True}
        )

    def own_images(self, *images: dict[str, Any]) -> None:
        """`Ec2.own_images`: every image of the account (to find snapshots another AMI uses)."""
        self.ec2.add_response(
            "describe_images",
            {"Images": list(images)},
            {"Owners": ["self"], "IncludeDisabled": True, "MaxResults": 1000},
        )

    def existing_snapshots(self, asked: list[str], existing: list[str]) -> None:
        self.ec2.add_response(
            "describe_snapshots",
            {
                "Snapshots": [
                    {"SnapshotId": s, "State": "completed", "VolumeSize": 8, "OwnerId": "123456789012"}
                    for s in existing
                ]
            },
            {"OwnerIds": ["self"], "Filters": [{"Name": "snapshot-id", "Values": asked}]},
        )

    def delete_snapshot(self, snapshot_id: str, error: str | None = None, message: str = "") -> None:
        if error is None:
            self.ec2.add_response("delete_snapshot", {}, {"SnapshotId": snapshot_id})
        else:
            self.ec2.add_client_error(
                "delete_snapshot",
                service_error_code=error,
                service_message=message or error,
                http_status_code=400 if error.startswith("Invalid") else 403,
                expected_params={"SnapshotId": snapshot_id},
            )

    def done(self) -> None:
        self.ec2.assert_no_pending_responses()
        self.autoscaling.assert_no_pending_responses()

    # --- driving the service

    def job(self, snapshots: tuple[str, ...] = (SNAP_A,)) -> Job:
        """The deregistration job an approved request starts, recorded in Redis."""
        now = time.time()
        approval = Approval(
            id="a-5eed01",
            kind="deregister",
            requester="UASKER",
            channel="CGENERAL",
            created_at=now,
            expires_at=now + 3600,
            region=REGION,
            state=ApprovalState.APPROVED,
            decided_by="UAPPROVER",
            decided_at=now,
            subject={
                "image_id": AMI,
                "name": "web-golden-2026-01-01",
                "keep_snapshots": False,
                "snapshots": [{"id": s, "size_gib": 8} for s in snapshots],
            },
        )
        job = self.deregistering.job_for(approval, now)
        self.jobs.create(job)
        return job

    def execute(self, job_id: str) -> tuple[float | None, Job]:
        job = self.jobs.get(job_id)
        assert job is not None
        again = self.deregistering.execute(job)
        after = self.jobs.get(job_id)
        assert after is not None
        return again, after


@pytest.fixture
def rig(redis_srv: Any, prefix: str, slack: Any) -> Iterator[Rig]:
    redis = store.connect(redis_srv.url)
    keys = Keys(prefix)
    effects = EffectWriter(redis, keys)
    jobs = JobStore(redis, keys, effects)
    approvals = ApprovalStore(redis, keys, effects)
    clients = AwsClients({})
    ec2_stub = Stubber(clients.ec2(None, REGION))
    autoscaling_stub = Stubber(clients.autoscaling(None, REGION))
    deregistering = Deregistering(
        Tasks(WorkStore(redis, keys, effects)),
        approvals,
        jobs,
        Ec2(clients),
        DeregisterSettings(approval_channel="COPS", approval_ttl=3600.0, protect_tag=PROTECT_TAG),
    )
    outbox = Outbox(
        OutboxStore(redis, keys, effects),
        Leases(redis, keys),
        WebClient(token=BOT_TOKEN, base_url=slack.api_url),
        lease_s=5.0,
    )
    with ec2_stub, autoscaling_stub:
        yield Rig(
            deregistering, jobs, approvals, AuditLog(redis, keys, effects), outbox, ec2_stub, autoscaling_stub
        )


def check_task(url: str) -> Task:
    return Task(
        id="t-0123456789abcdef",
        kind=CHECK_TASK,
        user="UASKER",
        channel="CGENERAL",
        team="T0001",
        response_url=url,
        payload={"image_id": AMI, "region": REGION, "account": None, "keep_snapshots": False, "reason": "v2"},
    )


def deliver(rig: Rig) -> None:
    """Send what the service queued (the outbox the bot's scheduler drains)."""
    while rig.outbox.drain():
        pass


def result_lines(slack: Any, job: Job) -> list[str]:
    """The lines of the one result message of `job` in the asking channel."""
    posts = [p for p in slack.posts("CGENERAL") if job.id in p.params["text"]]
    assert len(posts) == 1, [p.params["text"] for p in slack.posts()]
    return str(posts[0].params["text"]).splitlines()


# --- before asking: the check ------------------------------------------------------------------


def test_deregistration_protection_is_refused_with_the_reason(rig: Rig, slack: Any) -> None:
    rig.own_image(image(DeregistrationProtection="enabled-with-cooldown"))
    rig.nothing_in_use()
    url = slack.new_response_url()
    task = check_task(url)

    effects = rig.deregistering.check(task)

    rig.done()
    assert len(effects.notices) == 1
    text = effects.notices[0].text
    assert text.startswith(f"⛔ Not deregistering `{AMI}` in {REGION}"), text
    assert "deregistration protection is enabled on it" in text
    assert rig.approvals.id_for(task.id)[1] is None  # nobody is asked
    assert [(a.action, a.target) for a in effects.audit] == [("deregister.refused", AMI)]
    assert "deregistration protection" in effects.audit[0].result


def test_protection_turned_on_after_approval_stops_the_job(rig: Rig, slack: Any) -> None:
    job = rig.job()
    rig.own_image(image(DeregistrationProtection="enabled"))
    rig.nothing_in_use()  # and no DeregisterImage call

    again, done = rig.execute(job.id)

    rig.done()
    assert again is None and done.state is JobState.FAILED
    assert (
        done.error
        == "not deregistered: deregistration protection is enabled on it (turn it off in EC2 first)"
    )
    deliver(rig)
    lines = result_lines(slack, done)
    assert f"❌ `{AMI}` not deregistered: deregistration protection is enabled" in lines[0], lines
    assert not [line for line in lines if "snapshot `" in line], lines


def test_a_deprecated_ami_shows_its_deprecation_time_in_the_approval_message(rig: Rig, slack: Any) -> None:
    rig.own_image(image(DeprecationTime="2026-03-01T00:00:00.000Z"))
    rig.nothing_in_use()
    task = check_task(slack.new_response_url())

    rig.deregistering.check(task)

    rig.done()
    approval = rig.approvals.id_for(task.id)[1]
    assert approval is not None and approval.pending
    assert approval.subject["deprecation_time"] == "2026-03-01T00:00:00+00:00"
    deliver(rig)
    message = slack.wait_for(lambda s: s.posts("COPS"), what="the approval message")[0]
    facts = [f["text"] for b in message.params["blocks"] for f in b.get("fields", [])]
    assert "*Deprecated*\n2026-03-01 00:00" in facts, facts
    assert f"*AMI*\n`{AMI}`" in facts
    assert "*Snapshots*\n1 (8 GiB), deleted unless another AMI uses them" in facts


def test_an_approval_id_another_request_holds_is_skipped_not_reused(rig: Rig, slack: Any) -> None:
    """Approval ids are short (a-xxxxxx): when the one derived from this task is taken by another
    request's approval (decided ones are kept for 30 days), the next candidate is used."""
    task = check_task(slack.new_response_url())
    taken, _ = rig.approvals.id_for(task.id)
    now = time.time()
    other = Approval(
        id=taken,
        kind="deregister",
        requester="UOTHER",
        channel="CELSEWHERE",
        created_at=now - 86400,
        expires_at=now,
        subject={"image_id": "ami-0ffffffffffffffff", "task": "t-someone-else"},
        state=ApprovalState.APPROVED,
    )
    rig.approvals.create(other)
    rig.own_image(image())
    rig.nothing_in_use()

    effects = rig.deregistering.check(task)

    rig.done()
    mine, existing = rig.approvals.id_for(task.id)
    assert mine != taken and existing is not None and existing.pending
    assert existing.subject["image_id"] == AMI and existing.requester == "UASKER"
    assert rig.approvals.get(taken) == other  # the other request's approval is untouched
    assert f"Approval `{mine}` requested" in effects.notices[0].text
    # a retry of the same task finds its own approval and asks nobody a second time
    rig.own_image(image())
    rig.nothing_in_use()
    rig.deregistering.check(task)
    rig.done()
    assert rig.approvals.pending_count() == 1


# --- after approval: deregistering and the snapshots -------------------------------------------


def test_snapshots_aws_deleted_with_the_image_are_reported_deleted_without_delete_snapshot(
    rig: Rig, slack: Any
) -> None:
    """DeregisterImage(DeleteAssociatedSnapshots) deleted A; it reported an error for B, which still
    exists, so amibot deletes B itself. No DeleteSnapshot for A."""
    job = rig.job((SNAP_A, SNAP_B))
    rig.own_image(image(snapshots=(SNAP_A, SNAP_B)))
    rig.nothing_in_use()
    rig.deregister(
        [
            {"SnapshotId": SNAP_A, "ReturnCode": "success"},
            {"SnapshotId": SNAP_B, "ReturnCode": "client-error"},
        ]
    )
    rig.own_images(image(OTHER_AMI, snapshots=("snap-0cccccccccccccccc",)))
    rig.existing_snapshots([SNAP_A, SNAP_B], existing=[SNAP_B])
    rig.delete_snapshot(SNAP_B)

    again, done = rig.execute(job.id)

    rig.done()
    assert again is None and done.state is JobState.SUCCEEDED
    assert done.result["snapshots"] == {SNAP_A: "deleted", SNAP_B: "deleted"}
    assert done.result["aws_snapshot_results"] == {SNAP_A: "success", SNAP_B: "client-error"}
    deliver(rig)
    lines = result_lines(slack, done)
    assert f"🗑️ `{AMI}` (web-golden-2026-01-01) deregistered in {REGION}" in lines[0], lines
    assert lines[1:] == [f"✅ snapshot `{SNAP_A}`: deleted", f"✅ snapshot `{SNAP_B}`: deleted"]


def test_an_image_gone_when_deregister_image_is_retried_counts_as_deregistered(rig: Rig, slack: Any) -> None:
    """DeregisterImage's answer was lost and botocore sent it again: AWS answers NotFound, since the
    first call worked. That is a deregistered image (its snapshot is still cleaned up), not a failure."""
    job = rig.job()
    rig.own_image(image())
    rig.nothing_in_use()
    rig.ec2.add_client_error(
        "deregister_image",
        service_error_code="InvalidAMIID.NotFound",
        service_message=f"The image id '[{AMI}]' does not exist",
        http_status_code=400,
        expected_params={"ImageId": AMI, "DeleteAssociatedSnapshots": True},
    )
    rig.own_images()
    rig.existing_snapshots([SNAP_A], existing=[SNAP_A])
    rig.delete_snapshot(SNAP_A)

    again, done = rig.execute(job.id)

    rig.done()
    assert again is None and done.state is JobState.SUCCEEDED, done.error
    assert done.result["deregistered"] is True and done.result["snapshots"] == {SNAP_A: "deleted"}
    deliver(rig)
    lines = result_lines(slack, done)
    assert "deregistered" in lines[0] and "note: the image was already gone" in lines, lines


def test_a_snapshot_still_in_use_while_deregistration_settles_is_retried_then_deleted(
    rig: Rig, slack: Any
) -> None:
    job = rig.job()
    rig.own_image(image())
    rig.nothing_in_use()
    rig.deregister()  # moto-like: no DeleteSnapshotResults
    in_use = f"The snapshot {SNAP_A} is currently in use by {AMI}"
    for attempt in range(3):
        rig.own_images()
        rig.existing_snapshots([SNAP_A], existing=[SNAP_A])
        rig.delete_snapshot(SNAP_A, "InvalidSnapshot.InUse" if attempt < 2 else None, in_use)

    before = time.time()
    again, first = rig.execute(job.id)
    assert again is not None and again > before  # try again shortly, not now
    assert first.state is JobState.RUNNING and first.result["deregistered"] is True
    assert first.result["snapshots"] == {} and first.result["snapshot_attempts"] == 1
    again, second = rig.execute(job.id)  # resumes: no second DescribeImages of the AMI, no DeregisterImage
    assert again is not None and second.result["snapshot_attempts"] == 2
    again, done = rig.execute(job.id)

    rig.done()
    assert again is None and done.state is JobState.SUCCEEDED
    assert done.result["snapshots"] == {SNAP_A: "deleted"}
    deliver(rig)
    assert result_lines(slack, done)[1:] == [f"✅ snapshot `{SNAP_A}`: deleted"]


def test_a_snapshot_that_cannot_be_deleted_is_reported_failed_never_deleted(rig: Rig, slack: Any) -> None:
    job = rig.job((SNAP_A, SNAP_B))
    rig.own_image(image(snapshots=(SNAP_A, SNAP_B)))
    rig.nothing_in_use()
    rig.deregister([])
    rig.own_images()
    rig.existing_snapshots([SNAP_A, SNAP_B], existing=[SNAP_A, SNAP_B])
    rig.delete_snapshot(SNAP_A, "UnauthorizedOperation", "You are not authorized to perform this operation.")
    rig.delete_snapshot(SNAP_B)

    again, done = rig.execute(job.id)

    rig.done()  # a permanent error is not retried
    assert again is None and done.finished
    outcome = done.result["snapshots"][SNAP_A]
    not_allowed = f"amibot's AWS role is not allowed to delete snapshot {SNAP_A} in {REGION}"
    assert outcome == f"failed: {not_allowed} (UnauthorizedOperation)"
    assert done.result["snapshots"][SNAP_B] == "deleted"
    deliver(rig)
    assert result_lines(slack, done)[1:] == [
        f"⚠️ snapshot `{SNAP_A}`: failed: {not_allowed} (UnauthorizedOperation)",
        f"✅ snapshot `{SNAP_B}`: deleted",
    ]
    executed = [e for e in rig.audit.last(10) if e["action"] == "deregister.executed"]
    assert len(executed) == 1 and f"{SNAP_A} failed: " in executed[0]["detail"]


def test_a_snapshot_another_ami_uses_is_kept_and_says_which(rig: Rig, slack: Any) -> None:
    job = rig.job((SNAP_A, SNAP_B))
    rig.own_image(image(snapshots=(SNAP_A, SNAP_B)))
    rig.nothing_in_use()
    rig.deregister([])
    rig.own_images(image(OTHER_AMI, snapshots=(SNAP_A,)))  # A is also OTHER_AMI's root snapshot
    rig.existing_snapshots([SNAP_A, SNAP_B], existing=[SNAP_A, SNAP_B])
    rig.delete_snapshot(SNAP_B)  # and only B is deleted

    again, done = rig.execute(job.id)

    rig.done()
    assert again is None and done.state is JobState.SUCCEEDED
    assert done.result["snapshots"] == {SNAP_A: f"kept: still used by {OTHER_AMI}", SNAP_B: "deleted"}
    deliver(rig)
    assert result_lines(slack, done)[1:] == [
        f"ℹ️ snapshot `{SNAP_A}`: kept: still used by {OTHER_AMI}",
        f"✅ snapshot `{SNAP_B}`: deleted",
    ]


def test_a_timeout_on_deregister_image_then_the_image_gone_is_amibots_own_deregistration(
    rig: Rig, slack: Any
) -> None:
    """DeregisterImage times out after AWS applied it (the answer was lost): the job tries again
    later, finds the image gone, and reports it deregistered, not "already gone" (as if someone
    else had done it); the snapshots are deleted either way."""
    job = rig.job()
    rig.own_image(image())
    rig.nothing_in_use()
    client = rig.ec2.client

    def lost_answer(**_: Any) -> None:
        raise ReadTimeoutError(endpoint_url=f"https://ec2.{REGION}.amazonaws.com/")

    rig.deregister()  # AWS does it, but the answer never arrives:
    client.meta.events.register("after-call.ec2.DeregisterImage", lost_answer, unique_id="lost")
    try:
        again, first = rig.execute(job.id)
    finally:
        client.meta.events.unregister("after-call.ec2.DeregisterImage", unique_id="lost")
    assert again is not None and first.state is JobState.RUNNING, first
    assert first.result.get("deregistering") is True, first.result  # it may have happened

    rig.own_image(None)  # it did
    rig.own_images()
    rig.existing_snapshots([SNAP_A], existing=[SNAP_A])
    rig.delete_snapshot(SNAP_A)
    again, done = rig.execute(job.id)

    rig.done()
    assert again is None and done.state is JobState.SUCCEEDED
    assert "note" not in done.result, done.result
    deliver(rig)
    lines = result_lines(slack, done)
    assert f"🗑️ `{AMI}` (web-golden-2026-01-01) deregistered in {REGION}" in lines[0], lines
    assert lines[1:] == [f"✅ snapshot `{SNAP_A}`: deleted"]
