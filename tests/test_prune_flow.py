"""`/ami prune` end to end: real handlers (signed requests), real Redis, moto server, fake Slack.

The heart is the trap account of issue 5: the seed's naive cleanup script (describe-images of
everything older than 30 days, then a deregister loop) would delete AMIs that a stopped
instance, an old launch template version, a launch configuration and an auto scaling group
still use, a protected one and the newest of each family; amibot deletes exactly the right set.

moto gaps met here: images are created "now" (the test sets `creation_date` in moto's backend,
which runs in this process); every image gets its own snapshot (sharing one is set up in the
backend too); deregistration protection is not implemented (covered by the planner's unit
tests and the Stubber tests of the inventory).
"""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from slack_bolt.request import BoltRequest

from bot import pruning
from bot.images import Image, Snapshot, Use, UseKind
from bot.keys import Keys
from bot.models import Job, JobKind, JobState
from bot.notices import when
from bot.prune import Policy, plan
from bot.scheduler import cron_trigger
from bot.store.effects import Effects
from tests.conftest import SIGNING_SECRET
from tests.peers import wait_until
from tests.slack_requests import block_action_body, command_body, signed_headers

REGION = "us-east-1"
SETTINGS = {
    "amibot_approvers": "UAPPROVER,UAPPROVER2",
    "amibot_admins": "UADMIN",
    "amibot_approval_channel": "COPS",
    "amibot_regions": REGION,
}
WEEKLY = "0 6 * * 1"
AMI = re.compile(r"\bami-[0-9a-f]{8,17}\b")
RETENTION = timedelta(days=30)


# --- driving the bot ------------------------------------------------------------------------


def post(runtime: Any, body: str) -> Any:
    response = runtime.bolt.dispatch(BoltRequest(body=body, headers=signed_headers(body, SIGNING_SECRET)))
    assert response.status == 200, response.body
    return response


def command(runtime: Any, slack: Any, text: str, user: str = "UASKER") -> tuple[str, str]:
    """`/ami TEXT`: (the ack text, the command's response URL)."""
    url = slack.new_response_url()
    response = post(runtime, command_body(text, user=user, response_url=url))
    return str(json.loads(response.body)["text"]), url


def click(runtime: Any, slack: Any, action: str, value: str, user: str) -> str:
    url = slack.new_response_url()
    post(runtime, block_action_body(action, value, user=user, channel="COPS", response_url=url))
    return url


def answered(slack: Any, url: str, what: str) -> str:
    calls = slack.wait_for(lambda s: s.responses(url), what=what, timeout=10)
    return str(calls[0].params["text"])


def text_of(call: Any) -> str:
    """A posted message as a person reads it: its blocks' text (or its text without blocks)."""
    blocks = call.params.get("blocks") or []
    parts = [b.get("text", {}).get("text", "") for b in blocks]
    return "\n".join(p for p in parts if p) or str(call.params.get("text", ""))


def posts_with(slack: Any, channel: str, needle: str) -> list[Any]:
    return [p for p in slack.posts(channel) if needle in p.params.get("text", "")]


def one_post(slack: Any, channel: str, needle: str, timeout: float = 10) -> Any:
    return slack.wait_for(lambda s: posts_with(s, channel, needle), what=needle, timeout=timeout)[0]


def thread_of(slack: Any, message: Any) -> list[Any]:
    ts = message.response["ts"]
    return [p for p in slack.posts(message.params["channel"]) if p.params.get("thread_ts") == ts]


def approval_id_in(message: Any) -> str:
    for block in message.params["blocks"]:
        for element in block.get("elements", []):
            if element.get("action_id") == "ami_approve":
                return str(element["value"])
    raise AssertionError("no Approve button")


def approval_message(slack: Any) -> Any:
    return one_post(slack, "COPS", "Approval needed")


def listed_ids(message: Any) -> list[str]:
    """AMI ids in the message's list section (the one after the summary)."""
    return AMI.findall(message.params["blocks"][1]["text"]["text"])


def approve_and_finish(runtime: Any, slack: Any, approval_id: str) -> Job:
    click(runtime, slack, "ami_approve", approval_id, "UAPPROVER")
    approvals = runtime.services.approving._approvals
    job_id = wait_until(lambda: approvals.get(approval_id).job_id, what="the prune job")
    return wait_until(
        lambda: (job := runtime.jobs.get(job_id)) is not None and job.finished and job,
        timeout=15,
        what="the prune job to finish",
    )


def outside_minute_edge() -> None:
    """Claims of a woken cron job are per minute: keep two wake-ups in the same minute."""
    wait_until(lambda: datetime.now(UTC).second < 58, timeout=3, what="not the last seconds of a minute")


# --- the AWS account ------------------------------------------------------------------------


@dataclass
class Account:
    """AMIs made in moto with chosen ages; `ids` by label."""

    moto: Any
    ids: dict[str, str] = field(default_factory=dict)

    @property
    def ec2(self) -> Any:
        return self.moto.client("ec2")

    @property
    def backend(self) -> Any:
        return self.moto.backend(REGION)

    def ami(self, label: str, family: str, age: timedelta, tags: dict[str, str] | None = None) -> str:
        created = datetime.now(UTC) - age
        image_id = str(self.ec2.register_image(Name=f"{family}-{created:%Y-%m-%d-%H%M%S}")["ImageId"])
        if tags:
            self.ec2.create_tags(Resources=[image_id], Tags=[{"Key": k, "Value": v} for k, v in tags.items()])
        self.backend.amis[image_id].creation_date = created.replace(tzinfo=None)  # moto keeps naive UTC
        self.ids[label] = image_id
        return image_id

    def family(self, family: str, ages_days: list[float]) -> list[str]:
        return [self.ami(f"{family}{n}", family, timedelta(days=d)) for n, d in enumerate(ages_days)]

    def snapshot_of(self, label: str) -> str:
        return str(self.backend.amis[self.ids[label]].ebs_snapshot.id)

    def share_snapshot(self, label: str, with_label: str) -> str:
        """Make `label` use the snapshot of `with_label` (its own one is dropped)."""
        own = self.backend.amis[self.ids[label]]
        other = self.backend.amis[self.ids[with_label]]
        self.backend.snapshots.pop(own.ebs_snapshot.id)
        own.ebs_snapshot = other.ebs_snapshot
        return str(other.ebs_snapshot.id)

    def image_ids(self) -> set[str]:
        return {i["ImageId"] for i in self.ec2.describe_images(Owners=["self"])["Images"]}

    def snapshot_ids(self) -> set[str]:
        return {s["SnapshotId"] for s in self.ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]}

    def run_instance(self, label: str) -> str:
        """An instance running from the AMI `label` (or an AMI id)."""
        run = self.ec2.run_instances(ImageId=self.ids.get(label, label), MinCount=1, MaxCount=1)
        return str(run["Instances"][0]["InstanceId"])

    def tags_of(self, label: str) -> dict[str, str]:
        image = self.ec2.describe_images(ImageIds=[self.ids[label]])["Images"][0]
        return {t["Key"]: t["Value"] for t in image.get("Tags", [])}


def days(n: float) -> timedelta:
    return timedelta(days=n)


@pytest.fixture
def trap(moto: Any) -> Account:
    """The trap account of issue 5 (us-east-1); see `PRUNABLE` and the comments for each AMI."""
    acc = Account(moto)
    ec2, autoscaling = acc.ec2, moto.client("autoscaling")
    # family web: five old AMIs in use or protected, two genuinely unused, the newest three kept
    acc.ami("stopped", "web", days(200))
    acc.ami("old_lt_version", "web", days(190))
    acc.ami("launch_config", "web", days(180))
    acc.ami("asg", "web", days(170))
    acc.ami("protected", "web", days(160), tags={"amibot:keep": "release 1.0"})
    acc.ami("terminated", "web", days(150))  # only a terminated instance used it: prunable
    acc.ami("web_old", "web", days(140))
    acc.ami("web_newest_3", "web", days(100))  # kept only as one of the newest 3
    acc.ami("web_newest_2", "web", days(90))
    acc.ami("web_newest_1", "web", days(80))
    # family api: two old ones, one just younger than the retention, three new ones
    acc.ami("api_old_1", "api", days(120))
    acc.ami("api_old_2", "api", days(110))
    acc.ami("just_younger", "api", RETENTION - timedelta(hours=1))  # 4th newest: only the retention keeps it
    for n in (3, 2, 1):
        acc.ami(f"api_new_{n}", "api", days(n))
    # family db: an old one sharing its snapshot with the newest one
    acc.ami("db_shared", "db", days(300))
    for n, age in ((3, 60), (2, 50), (1, 40)):
        acc.ami(f"db_new_{n}", "db", days(age))
    acc.share_snapshot("db_shared", "db_new_1")

    stopped = acc.run_instance("stopped")
    ec2.stop_instances(InstanceIds=[stopped])
    ec2.terminate_instances(InstanceIds=[acc.run_instance("terminated")])
    ec2.create_launch_template(
        LaunchTemplateName="web-lt", LaunchTemplateData={"ImageId": acc.ids["old_lt_version"]}
    )
    for label in ("web_newest_2", "web_newest_1"):
        ec2.create_launch_template_version(
            LaunchTemplateName="web-lt", LaunchTemplateData={"ImageId": acc.ids[label]}
        )
    ec2.modify_launch_template(
        LaunchTemplateName="web-lt", DefaultVersion="2"
    )  # v1: neither default nor latest
    autoscaling.create_launch_configuration(
        LaunchConfigurationName="web-lc", ImageId=acc.ids["launch_config"], InstanceType="t3.micro"
    )
    ec2.create_launch_template(
        LaunchTemplateName="asg-lt",
        LaunchTemplateData={"ImageId": acc.ids["asg"], "InstanceType": "t3.micro"},
    )
    autoscaling.create_auto_scaling_group(
        AutoScalingGroupName="web-asg",
        LaunchTemplate={"LaunchTemplateName": "asg-lt", "Version": "$Latest"},
        MinSize=0,
        MaxSize=0,
        DesiredCapacity=0,
        AvailabilityZones=[f"{REGION}a"],
    )
    return acc


PRUNABLE = {"terminated", "web_old", "api_old_1", "api_old_2", "db_shared"}
IN_USE_OR_PROTECTED = {"stopped", "old_lt_version", "launch_config", "asg", "protected"}


def naive_cleanup_targets(ec2: Any, older_than: timedelta = RETENTION) -> set[str]:
    """The seed's script, minus its deregister loop:
    `aws ec2 describe-images --owners self --query "Images[?CreationDate<='DATE']"`."""
    cutoff = (datetime.now(UTC) - older_than).strftime("%Y-%m-%dT%H:%M:%S")
    return {
        i["ImageId"] for i in ec2.describe_images(Owners=["self"])["Images"] if i["CreationDate"] <= cutoff
    }


# --- 1. the trap account ----------------------------------------------------------------------


def test_trap_account_the_naive_script_deletes_in_use_images_amibot_prunes_exactly_the_right_set(
    bot: Any, slack: Any, trap: Account
) -> None:
    ids = trap.ids
    prunable = {ids[label] for label in PRUNABLE}
    everything = trap.image_ids()
    assert len(everything) == 20
    naive = naive_cleanup_targets(trap.ec2)
    assert {ids[label] for label in IN_USE_OR_PROTECTED} <= naive  # what the script would destroy
    assert {ids["web_newest_1"], ids["db_new_1"]} <= naive and ids["just_younger"] not in naive
    assert len(naive - prunable) == 11

    snapshot_of = {label: trap.snapshot_of(label) for label in ids}
    assert trap.snapshot_ids() == set(snapshot_of.values())
    runtime = bot(**SETTINGS)
    ack, _ = command(runtime, slack, "prune --dry-run")
    assert ack == f"🧮 Planning a prune of {REGION} (dry run: nothing will be deleted)…"
    dry = one_post(slack, "CGENERAL", "Prune plan (dry run")
    assert set(AMI.findall(dry.params["text"])) == prunable
    summary = dry.params["blocks"][0]["text"]["text"]
    assert "*5* AMIs to deregister, 15 kept" in summary
    assert (
        "in use 6 · protected 1 · deregistration protection 0 · newest of family 9 · younger than retention 4"
        in summary
    )
    assert "Frees 60 GiB of snapshots ≈ $3.00/month" in summary  # 5 × 15 GiB, less the shared snapshot
    assert not any(b["type"] == "actions" for b in dry.params["blocks"])
    assert not slack.posts("COPS")

    _, url = command(runtime, slack, "prune")
    message = approval_message(slack)
    assert set(listed_ids(message)) == prunable
    approval_id = approval_id_in(message)
    assert answered(slack, url, "requester told") == (
        f"📨 Prune plan `{approval_id}` (5 AMIs) posted for approval in <#COPS>."
    )
    assert trap.image_ids() == everything

    refused = click(runtime, slack, "ami_approve", approval_id, "UASKER")  # the requester is no approver
    assert "not an approver" in answered(slack, refused, "refusal")
    job = approve_and_finish(runtime, slack, approval_id)

    assert job.state is JobState.SUCCEEDED
    assert trap.image_ids() == everything - prunable
    shared = snapshot_of["db_new_1"]
    assert snapshot_of["db_shared"] == shared
    assert trap.snapshot_ids() == {snapshot_of[label] for label in set(ids) - PRUNABLE}  # the shared one too

    report = one_post(slack, "CGENERAL", "Prune done")
    text = report.params["text"]
    counts = "5 AMIs deregistered, 0 failed, 0 skipped; 4 snapshots deleted, 1 kept (used by another AMI)"
    assert f"{counts}, 0 failed" in text
    for label in PRUNABLE - {"db_shared"}:
        assert f"✅ `{ids[label]}` deregistered; snapshot `{snapshot_of[label]}` deleted" in text
    assert (
        f"✅ `{ids['db_shared']}` deregistered; snapshot `{shared}` kept: still used by {ids['db_new_1']}"
        in text
    )
    # the approval message shows the outcome in place, and its thread gets the report
    assert slack.wait_for(
        lambda s: [c for c in s.calls("chat.update") if c.ok and "Prune done" in c.params["text"]],
        what="update",
    )
    assert [p.params["text"] for p in thread_of(slack, message)] == [text]
    assert [e["action"] for e in runtime.audit.last(100)].count("prune.executed") == 1


# --- 2. re-check at execution -----------------------------------------------------------------


def test_an_ami_that_came_into_use_after_the_plan_is_skipped_and_kept(
    bot: Any, slack: Any, moto: Any
) -> None:
    acc = Account(moto)
    old = acc.family("app", [100, 95, 90, 85, 80, 75])  # the three oldest are prunable
    runtime = bot(**SETTINGS)
    command(runtime, slack, "prune")
    message = approval_message(slack)
    assert set(listed_ids(message)) == set(old[:3])

    instance = acc.run_instance("app0")  # somebody launches from it before the approval
    job = approve_and_finish(runtime, slack, approval_id_in(message))

    assert acc.image_ids() == set(old) - set(old[1:3])
    assert job.result["recheck"][REGION]["skipped"] == {
        old[0]: f"kept now: in use by instance {instance} (running)"
    }
    report = one_post(slack, "CGENERAL", "Prune done").params["text"]
    assert "2 AMIs deregistered, 0 failed, 1 skipped" in report
    assert f"ℹ️ `{old[0]}` skipped: kept now: in use by instance {instance} (running)" in report


# --- 3. resume after a crash --------------------------------------------------------------------


@dataclass
class Deregistrations:
    """moto's DeregisterImage, counted; `faults` makes one call for an AMI fail in a given way."""

    original: Any
    ok: Counter[str] = field(default_factory=Counter)
    refused: Counter[str] = field(default_factory=Counter)
    faults: dict[str, str] = field(default_factory=dict)

    def __call__(self, ami_id: str) -> None:
        from moto.ec2.exceptions import EC2ClientError

        fault = self.faults.pop(ami_id, None)
        if fault == "refused":  # AWS is busy: nothing happened
            self.refused[ami_id] += 1
            raise EC2ClientError("ResourceLimitExceeded", "busy, try again")
        self.original(ami_id)
        self.ok[ami_id] += 1
        if fault == "answer lost":  # AWS did it, but amibot never hears (as in a crash right after)
            raise EC2ClientError("ResourceLimitExceeded", "busy, try again")


@pytest.fixture
def deregistrations(moto: Any, monkeypatch: pytest.MonkeyPatch) -> Deregistrations:
    backend = moto.backend(REGION)
    counted = Deregistrations(backend.deregister_image)
    monkeypatch.setattr(backend, "deregister_image", counted)
    return counted


def drain(runtime: Any) -> None:
    for _ in range(50):
        if not runtime.outbox.drain():
            return


def test_a_crash_midway_resumes_and_deregisters_every_approved_ami_exactly_once(
    bot: Any, slack: Any, moto: Any, deregistrations: Deregistrations, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pruning, "BATCH", 2)  # small steps, so the job can stop between them
    acc = Account(moto)
    amis = acc.family("old", [100 - n for n in range(10)])
    snapshot_of = {ami: acc.snapshot_of(f"old{n}") for n, ami in enumerate(amis)}
    first = bot(**SETTINGS)
    command(first, slack, "prune")
    message = approval_message(slack)
    approval_id = approval_id_in(message)
    approvals = first.services.approving._approvals
    wait_until(lambda: approvals.get(approval_id).message_ts, what="approval message recorded")
    first.stop()

    # a replica that runs nothing by itself: the test drives the job step by step
    second = bot(start=False, **SETTINGS)
    click(second, slack, "ami_approve", approval_id, "UAPPROVER")
    job_id = approvals.get(approval_id).job_id

    def step(runtime: Any) -> float | None:
        return runtime.pruning.execute(runtime.jobs.get(job_id))

    before = time.time()
    assert step(second) is not None  # the re-check against fresh inventory
    approved = second.jobs.get(job_id).result["recheck"][REGION]["go"]  # in the plan's order
    assert set(approved) == set(amis[:7])  # the newest three are kept
    deregistrations.faults = {approved[2]: "answer lost", approved[4]: "refused"}
    step(second)  # two AMIs
    assert step(second) >= before + 20  # the third: AWS did it, but said "busy": try again later
    assert set(second.jobs.get(job_id).result["done"]) == set(approved[:2])

    # the process dies; a fresh replica resumes the job from Redis, much later (stale in-use data)
    third = bot(start=False, **SETTINGS)

    def long_ago(job: Job) -> tuple[Job, Effects]:
        job.result["recheck"][REGION]["at"] = 0
        return job, Effects()

    third.jobs.update(job_id, long_ago)
    instance = acc.run_instance(approved[6])  # the last approved AMI comes into use meanwhile
    steps = 0
    while step(third) is not None:
        steps += 1
        assert steps < 20, "the job does not finish"
    job = third.jobs.get(job_id)
    assert job.state is JobState.SUCCEEDED
    assert step(third) is None  # a finished job does nothing more

    deregistered = set(approved[:6])
    assert deregistrations.ok == Counter({ami: 1 for ami in deregistered})
    assert deregistrations.refused == Counter({approved[4]: 1})
    assert acc.image_ids() == set(amis) - deregistered
    assert job.result["done"][approved[2]] == "deregistered (already gone)"
    assert acc.snapshot_ids() == {snapshot_of[ami] for ami in set(amis) - deregistered}
    assert job.result["recheck"][REGION]["skipped"] == {
        approved[6]: f"kept now: in use by instance {instance} (running)"
    }

    drain(third)
    reports = posts_with(slack, "CGENERAL", "Prune done")
    assert len(reports) == 1
    assert "6 AMIs deregistered, 0 failed, 1 skipped; 6 snapshots deleted" in reports[0].params["text"]
    assert [p.params["text"] for p in thread_of(slack, message)] == [reports[0].params["text"]]
    # progress went to the approval message itself, updated in place; the last update is the outcome
    updates = [
        c.params["text"] for c in slack.calls("chat.update") if c.params["ts"] == message.response["ts"]
    ]
    assert "— approved" in updates[0] and any("🧹 Pruning (job" in u for u in updates[1:-1])
    assert "🧹 Prune done" in updates[-1]
    assert [e["action"] for e in third.audit.last(100)].count("prune.executed") == 1


# --- 4. a long plan -------------------------------------------------------------------------------


def test_a_long_plan_lists_fifteen_and_the_rest_in_the_thread(bot: Any, slack: Any, moto: Any) -> None:
    acc = Account(moto)
    amis = acc.family("bulk", [200 - n for n in range(21)])
    prunable = set(amis[:18])
    runtime = bot(**SETTINGS)

    command(runtime, slack, "prune --dry-run")
    dry = one_post(slack, "CGENERAL", "Prune plan (dry run")
    assert len(set(AMI.findall(dry.params["text"]))) == 15
    assert "… and 3 more (full list in the thread)" in dry.params["text"]
    dry_thread = slack.wait_for(lambda s: thread_of(s, dry), what="dry-run thread")
    assert set(AMI.findall(" ".join(p.params["text"] for p in dry_thread))) == prunable

    command(runtime, slack, "prune")
    message = approval_message(slack)
    shown = listed_ids(message)
    assert len(shown) == 15 and set(shown) < prunable
    assert "… and 3 more (full list in the thread)" in message.params["blocks"][1]["text"]["text"]
    replies = slack.wait_for(lambda s: thread_of(s, message), what="thread replies")
    assert replies[0].params["text"].startswith("AMIs in this plan (1/1):")
    assert set(AMI.findall(" ".join(p.params["text"] for p in replies))) == prunable


# --- 5. schedule, the scheduled run and the Keep notice ---------------------------------------------


def test_prune_schedule_shows_the_cron_and_the_next_run(bot: Any, slack: Any, moto: Any) -> None:
    off, _ = command(bot(start=False, **SETTINGS), slack, "prune schedule")
    assert off.startswith("🗓️ Scheduled prune is *off* (set AMIBOT_PRUNE_SCHEDULE")
    assert "retention 30d, keep last 3 per family, protect tag `amibot:keep`" in off

    on, _ = command(bot(start=False, **SETTINGS, amibot_prune_schedule=WEEKLY), slack, "prune schedule")
    nxt = pruning.next_run(WEEKLY, datetime.now(UTC))
    assert nxt is not None and nxt.weekday() == 0 and (nxt.hour, nxt.minute) == (6, 0)
    assert f"Scheduled prune: `{WEEKLY}` (UTC). Next run: {when(nxt.timestamp())}" in on
    assert "posted for approval in <#COPS>" in on and "Keep buttons goes out 3d before" in on

    no_channel = {**SETTINGS, "amibot_approval_channel": None}
    off_again, _ = command(
        bot(start=False, **no_channel, amibot_prune_schedule=WEEKLY), slack, "prune schedule"
    )
    assert off_again.startswith(f"🗓️ Scheduled prune `{WEEKLY}` is *off*: no channel")


def ran_since(runtimes: list[Any], job: str, since: datetime) -> bool:
    """Every runtime's scheduler has run `job` since `since` (its next run is back in the future)."""
    return all((r.scheduler.next_run(job) or since) > since + timedelta(seconds=30) for r in runtimes)


def no_work_due(runtime: Any, prefix: str) -> bool:
    return runtime.redis.zcard(Keys(prefix).work_due) == 0


def test_the_scheduled_prune_posts_one_plan_across_two_replicas(
    bot: Any, slack: Any, moto: Any, prefix: str
) -> None:
    acc = Account(moto)
    amis = acc.family("sched", [100, 90, 80, 70])
    quiet = {"amibot_prune_schedule": WEEKLY, "amibot_prune_notice": "1m"}  # no Keep notice now
    replicas = [bot(**SETTINGS, **quiet) for _ in range(2)]
    outside_minute_edge()
    woken = datetime.now(UTC)
    for replica in replicas:
        replica.scheduler.wake("prune")
    wait_until(lambda: ran_since(replicas, "prune", woken), what="both replicas ran the cron job")
    message = approval_message(slack)
    wait_until(lambda: no_work_due(replicas[0], prefix), what="no work left")
    assert [e["action"] for e in replicas[0].audit.last(100)].count("prune.requested") == 1
    assert len(posts_with(slack, "COPS", "Approval needed")) == 1
    assert len([p for p in slack.posts("COPS") if not p.params.get("thread_ts")]) == 1  # nothing else
    assert "the prune schedule asks to prune AMIs" in text_of(message)
    assert listed_ids(message) == [amis[0]]

    job = approve_and_finish(replicas[1], slack, approval_id_in(message))  # nobody's own request
    assert job.state is JobState.SUCCEEDED and job.requester == "amibot"
    assert acc.image_ids() == set(amis[1:])
    assert "1 AMIs deregistered" in one_post(slack, "COPS", "Prune done").params["text"]


def test_the_notice_lists_what_the_next_run_prunes_and_keep_protects_an_ami(
    bot: Any, slack: Any, moto: Any, prefix: str
) -> None:
    acc = Account(moto)
    now = datetime.now(UTC)
    nxt = pruning.next_run(WEEKLY, now)
    assert nxt is not None
    for n in (3, 2, 1):
        acc.ami(f"new_{n}", "svc", days(n))
    acc.ami("soon", "svc", RETENTION - (nxt - now) / 2)  # young today, old enough at the next run
    acc.ami("old_1", "svc", days(100))
    acc.ami("old_2", "svc", days(90))
    upcoming = {acc.ids[label] for label in ("soon", "old_1", "old_2")}

    settings = {**SETTINGS, "amibot_prune_schedule": WEEKLY, "amibot_prune_notice": "8d"}
    replicas = [bot(**settings) for _ in range(2)]  # each checks for a due notice when it starts
    woken = datetime.now(UTC)
    for replica in replicas:
        replica.scheduler.wake("prune-notice")
    wait_until(lambda: ran_since(replicas, "prune-notice", woken), what="both replicas checked")
    notice = one_post(slack, "COPS", "The scheduled prune would deregister")
    wait_until(lambda: no_work_due(replicas[0], prefix), what="no work left")
    assert len(posts_with(slack, "COPS", "The scheduled prune would deregister")) == 1
    assert f"The scheduled prune on {when(nxt.timestamp())} would deregister these 3 AMIs" in text_of(notice)
    keep = {
        AMI.findall(b["text"]["text"])[0]: b["accessory"]["value"]
        for b in notice.params["blocks"]
        if b.get("accessory", {}).get("action_id") == "ami_keep"
    }
    assert set(keep) == upcoming

    refused = click(replicas[0], slack, "ami_keep", keep[acc.ids["old_1"]], "UASKER")
    assert "only approvers and admins can keep" in answered(slack, refused, "refusal")
    assert "amibot:keep" not in acc.tags_of("old_1")

    kept = click(replicas[1], slack, "ami_keep", keep[acc.ids["old_1"]], "UAPPROVER")
    assert (
        f"`{acc.ids['old_1']}`" in answered(slack, kept, "kept")
        and "is protected" in slack.responses(kept)[0].params["text"]
    )
    assert acc.tags_of("old_1")["amibot:keep"] == "UAPPROVER"

    command(replicas[0], slack, "prune --dry-run")
    dry = one_post(slack, "CGENERAL", "Prune plan (dry run")
    assert set(AMI.findall(dry.params["text"])) == {acc.ids["old_2"]}  # "soon" is not old yet


# --- 6. the pure pieces --------------------------------------------------------------------------------

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def image(
    image_id: str, age_days: float, snapshots: tuple[tuple[str, int], ...], family: str = "web"
) -> Image:
    return Image(
        image_id=image_id,
        name=f"{family}-{image_id[-1]}",
        state="available",
        creation_date=NOW - days(age_days),
        region=REGION,
        tags={"amibot:family": family},
        snapshots=tuple(Snapshot(s, gib) for s, gib in snapshots),
    )


def region_plans() -> list[pruning.RegionPlan]:
    images = [
        image("ami-00000001", 200, (("snap-1", 8), ("snap-x", 4))),
        image("ami-00000002", 190, (("snap-2", 10),)),
        image("ami-00000003", 180, (("snap-3", 10),)),  # in use
        image("ami-00000004", 10, (("snap-x", 4),)),  # young, shares snap-x
    ]
    uses = {"ami-00000003": (Use(UseKind.INSTANCE, "i-0123456789abcdef0", "stopped"),)}
    policy = Policy(retention=RETENTION, keep_last=0)
    return [
        pruning.RegionPlan(REGION, plan(images, uses, policy, NOW)),
        pruning.RegionPlan(
            "eu-west-1", None, blocked="launch template references amibot could not resolve: x"
        ),
    ]


def test_summarize_counts_lists_and_prices_the_plan() -> None:
    policy = Policy(retention=RETENTION, keep_last=0)
    s = pruning.summarize(region_plans(), policy, "prod")
    assert s["counts"] == {
        "prune": 2,
        "keep": 2,
        "in_use": 1,
        "protected": 0,
        "deregistration_protection": 0,
        "keep_last": 0,
        "retention": 1,
        "not_available": 0,
    }
    assert [a["id"] for a in s["regions"][REGION]] == ["ami-00000002", "ami-00000001"]
    assert s["freed_gib"] == 18  # snap-x stays: the young AMI uses it
    assert s["saving"] == 0.9
    assert s["blocked"] == {"eu-west-1": "launch template references amibot could not resolve: x"}
    assert pruning.summary_text(s).splitlines() == [
        "*Prune plan* · account prod: *2* AMIs to deregister, 2 kept (retention 30d, keep last 0 per family)",
        "Kept because: in use 1 · protected 0 · deregistration protection 0 · newest of family 0 · "
        "younger than retention 1 · not available 0",
        "Frees 18 GiB of snapshots ≈ $0.90/month (at $0.05 per GiB-month)",
        "⛔ eu-west-1: nothing pruned — launch template references amibot could not resolve: x",
    ]


def job_with(result: dict[str, Any], approved: dict[str, list[str]] | None = None) -> Job:
    return Job(
        id="j-abc123",
        kind=JobKind.PRUNE,
        requester="UASKER",
        channel="CGENERAL",
        region=REGION,
        created_at=0,
        params={
            "approval_id": "a-123456",
            "approved": approved or {REGION: ["ami-1", "ami-2", "ami-3", "ami-4"]},
        },
        result=result,
    )


RESULT = {
    "recheck": {
        REGION: {
            "go": ["ami-1", "ami-2", "ami-3"],
            "skipped": {"ami-4": "kept now: in use by instance i-1 (running)"},
            "snapshots": {"ami-1": ["snap-1", "snap-x"], "ami-2": ["snap-2"], "ami-3": ["snap-3"]},
        }
    },
    "done": {"ami-1": "deregistered", "ami-2": "deregistered (already gone)", "ami-3": "failed: denied"},
    "snapshots": {"snap-1": "deleted", "snap-x": "kept: still used by ami-9", "snap-2": "failed: busy"},
}


def test_report_has_one_line_per_ami_with_its_snapshots() -> None:
    text, lines = pruning.report(job_with(RESULT), RESULT, None)
    assert lines == [
        "✅ `ami-1` deregistered; snapshot `snap-1` deleted; snapshot `snap-x` kept: still used by ami-9",
        "✅ `ami-2` deregistered (already gone); snapshot `snap-2` failed: busy",
        "⚠️ `ami-3` failed: denied",
        "ℹ️ `ami-4` skipped: kept now: in use by instance i-1 (running)",
    ]
    assert text.splitlines() == [
        "🧹 Prune done (job `j-abc123`): 2 AMIs deregistered, 1 failed, 1 skipped; "
        "1 snapshots deleted, 1 kept (used by another AMI), 1 failed",
        *lines,
    ]
    stopped, _ = pruning.report(job_with(RESULT), RESULT, "amibot's AWS role is not allowed")
    assert stopped.startswith("❌ Prune stopped: amibot's AWS role is not allowed (job `j-abc123`)")


def test_a_long_report_shows_fifteen_lines_and_says_where_the_rest_are() -> None:
    go = [f"ami-{n:02d}" for n in range(20)]
    result = {
        "recheck": {REGION: {"go": go, "skipped": {}, "snapshots": {}}},
        "done": dict.fromkeys(go, "deregistered"),
    }
    text, lines = pruning.report(job_with(result, {REGION: go}), result, None)
    assert len(lines) == 20 and text.splitlines()[1:] == [*lines[:15], "… and 5 more in the thread"]


def test_progress_counts_deregistered_skipped_and_regions_to_check() -> None:
    job = job_with(RESULT, {REGION: ["ami-1"], "eu-west-1": ["ami-7"]})
    assert pruning.progress_text(job, RESULT) == (
        "🧹 Pruning (job `j-abc123`): 3/3 AMIs deregistered, 1 skipped (no longer prunable); "
        "1 region(s) still to re-check"
    )


def test_next_run_and_schedule_text() -> None:
    monday = datetime(2026, 11, 30, 6, 0, tzinfo=UTC)
    assert pruning.next_run(WEEKLY, NOW) == monday
    assert pruning.next_run(WEEKLY, monday) == monday
    assert pruning.next_run(None, NOW) is None
    policy = Policy(retention=timedelta(hours=36), keep_last=2)
    assert pruning.schedule_text(WEEKLY, days(3), NOW, policy, channel="COPS") == (
        "🗓️ Scheduled prune: `0 6 * * 1` (UTC). Next run: 2026-11-30 06:00 UTC; the plan is posted for "
        "approval in <#COPS>. A notice with Keep buttons goes out 3d before. "
        "Policy: retention 36h, keep last 2 per family, protect tag `amibot:keep`."
    )
    assert "is *off*: no channel" in pruning.schedule_text(WEEKLY, days(3), NOW, policy, channel=None)
    assert "is *off* (set AMIBOT_PRUNE_SCHEDULE" in pruning.schedule_text(
        None, days(3), NOW, policy, channel="C1"
    )


@pytest.mark.parametrize(
    ("crontab", "fires"),
    [
        ("0 6 * * 1", ["Mon"]),  # APScheduler's own from_crontab would say Tuesday
        ("0 6 * * 0", ["Sun"]),
        ("0 6 * * 7", ["Sun"]),
        ("0 6 * * 1-5", ["Mon", "Tue", "Wed", "Thu", "Fri"]),
        ("0 6 * * MON-fri", ["Mon", "Tue", "Wed", "Thu", "Fri"]),
        ("0 6 * * */2", ["Sun", "Tue", "Thu", "Sat"]),
        ("0 6 * * 5-7", ["Fri", "Sat", "Sun"]),
        ("0 6 * * 0,6", ["Sat", "Sun"]),
        ("0 6 * * *", ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]),
    ],
)
def test_cron_days_of_the_week_count_from_sunday_as_in_cron(crontab: str, fires: list[str]) -> None:
    trigger = cron_trigger(crontab)
    fire, seen = NOW, set()
    for _ in range(7):
        fire = trigger.get_next_fire_time(None, fire + timedelta(minutes=1))
        assert fire is not None and (fire.hour, fire.minute) == (6, 0)
        seen.add(fire.strftime("%a"))
    assert seen == set(fires)


@pytest.mark.parametrize(
    "crontab",
    ["0 6 * * 8", "0 6 * * 5-1", "0 6 * *", "0 6 * * 1/0", "0 6 * * xyz", "0 6 1 * 1", "61 6 * * *"],
)
def test_bad_crontabs_are_refused(crontab: str) -> None:
    with pytest.raises(ValueError):
        cron_trigger(crontab)
