"""`/ami copy`: record the job on the ack path; a worker calls CopyImage in each destination region.

1. ack path (Redis only): one COPY job with one target per destination region, its work due at
   once, an audit entry; the ack names the job and the regions.
2. worker: reads the source image once (DescribeImages in the source region; it must exist, be
   owned and be `available`), then calls CopyImage in each destination region whose target is
   still REQUESTED or QUEUED, with a ClientToken derived from the job and the region, so a retried
   call returns the first copy instead of making a second one. A retry after an attempt whose
   outcome is unknown first looks for the copy by its `amibot:job` tag (as create does).
   Each started copy becomes PENDING and is watched by the batched tracker like any image.
3. AWS limits concurrent copies per destination region and account (ResourceLimitExceeded): that
   target waits as QUEUED, the requester is told once, and the worker tries again with backoff
   until AMIBOT_MAX_WAIT. Throttling is retried; any other error fails that target only.
4. When every target is done, the tracker (or this worker, for a target that ended here) posts
   one summary of every region.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from bot import notices
from bot.aws.ec2 import JOB_TAG, REQUESTER_TAG, Ec2
from bot.commands import Copy
from bot.context import Caller, Reply
from bot.errors import AwsError
from bot.ids import new_job_id
from bot.images import Image
from bot.models import Job, JobKind, JobState, Target, TargetState
from bot.store.effects import AuditEntry, Effects
from bot.store.jobs import JobExists, JobStore
from bot.tracker import TrackPolicy, finish_target

MAX_ATTEMPTS = 8  # transient errors (throttling, timeouts) per target before it fails
MAX_DELAY_S = 300.0
CLIENT_TOKEN_MAX = 64  # EC2 client tokens: up to 64 ASCII characters
# AWS refuses a copy for its concurrency limit (per destination region and account) with these.
COPY_LIMIT_CODES = frozenset({"ResourceLimitExceeded"})
WAITING = frozenset({TargetState.REQUESTED, TargetState.QUEUED})
_LIMIT_NUMBER = re.compile(r"\b(?:limit is|limit of|quota of|maximum of)\s+(\d+)", re.IGNORECASE)


class Step(StrEnum):
    """What one CopyImage attempt did to its target."""

    STARTED = "started"  # AWS accepted it: the copy has an image id
    QUEUED = "queued"  # AWS refused it for the concurrent-copy limit: try again later
    RETRY = "retry"  # a transient error: try again later, nothing to tell
    FAILED = "failed"  # a permanent error: this target is done


@dataclass(frozen=True)
class Outcome:
    region: str
    step: Step
    image_id: str | None = None
    message: str | None = None  # for QUEUED and FAILED: one readable line
    retry_at: float | None = None


@dataclass(frozen=True)
class CopySettings:
    max_wait: float  # seconds a job may take, queueing included
    retry_base: float  # first retry delay in seconds (doubles, up to MAX_DELAY_S)


# pure helpers -------------------------------------------------------------------------------------


def client_token(job_id: str, region: str) -> str:
    """The CopyImage ClientToken of one target: the same for every attempt, different per region."""
    token = f"amibot-{job_id}-{region}"
    if len(token) <= CLIENT_TOKEN_MAX and token.isascii():
        return token
    digest = hashlib.sha256(f"{job_id}|{region}".encode()).hexdigest()
    return f"amibot-{digest}"[:CLIENT_TOKEN_MAX]


def retry_delay(n: int, base: float) -> float:
    """n-th retry (0-based): base, 2×base, 4×base … up to MAX_DELAY_S."""
    return float(min(MAX_DELAY_S, base * 2 ** max(0, min(n, 16))))


def source_problem(image: Image | None, image_id: str, region: str) -> str | None:
    """Why this image cannot be copied, or None (pure)."""
    if image is None:
        return f"image {image_id} not found in {region}, or not owned by this account"
    if image.state != "available":
        return f"image {image_id} is {image.state} in {region}; only an available image can be copied"
    return None


def default_description(image_id: str, region: str, name: str) -> str:
    return f"[Copied {image_id} from {region}] {name}"[:255]


def queued_message(region: str, aws_message: str) -> str:
    """What the requester is told when AWS refuses a copy for its concurrency limit."""
    found = _LIMIT_NUMBER.search(aws_message)
    limit = f"only {found.group(1)}" if found else "only a few"
    return f"queued: AWS allows {limit} concurrent copies into {region}; amibot will retry"


def copy_accepted(job: Job) -> Reply:
    regions = ", ".join(t.region for t in job.targets)
    enc = ""
    if job.params.get("encrypted"):
        key = job.params.get("kms_key")
        enc = f", encrypted with {'KMS key ' + key if key else 'the default EBS key'}"
    return Reply(
        f"🕓 Job `{job.id}`: copying {notices.copy_source(job)} to {regions}{enc}"
        f"{notices.account_note(job)}. I'll post in this channel when each copy is ready."
    )


def progress_text(job: Job, outcomes: Sequence[Outcome]) -> str:
    lines = [f"Job `{job.id}`: copying {notices.copy_source(job)}"]
    for out in outcomes:
        if out.step is Step.STARTED:
            lines.append(
                f"• 🔄 {out.region}: CopyImage started — `{out.image_id}`; tracking it until available"
            )
        elif out.step is Step.QUEUED:
            lines.append(f"• 🕓 {out.region}: {out.message}")
        elif out.step is Step.FAILED:
            lines.append(f"• ❌ {out.region}: failed — {out.message}")
    return "\n".join(lines)


def apply_outcomes(
    job: Job, outcomes: Iterable[Outcome], now: float, policy: TrackPolicy
) -> tuple[Job, Effects] | None:
    """What the attempts of one worker run mean for the job (pure); None: nothing changes.

    Only targets still waiting change, so a run applied twice (or after a lost race) tells
    nothing twice. A target that fails here gets the same notices as one the tracker saw fail,
    and the last target to end finishes the job (with the summary).
    """
    if job.state not in (JobState.QUEUED, JobState.TRACKING):
        return None
    effects = Effects()
    told: list[Outcome] = []
    counters = {region: dict(c) for region, c in job.result.get("targets", {}).items()}
    for out in outcomes:
        target = job.target(out.region)
        if target.state not in WAITING:
            continue
        count = counters.setdefault(out.region, {})
        if out.step is Step.STARTED:
            pending = target.to(TargetState.PENDING, image_id=out.image_id, started_at=now, error=None)
            job = job.with_target(pending)
            if job.state is JobState.QUEUED:
                job = job.to(JobState.TRACKING)
            effects += Effects(audit=[_audit(job, "copy.started", out.image_id or job.id, out.region)])
            told.append(out)
        elif out.step is Step.QUEUED:
            count["refusals"] = count.get("refusals", 0) + 1
            count["next_at"] = out.retry_at
            if target.state is TargetState.QUEUED:
                continue  # told already
            job = job.with_target(target.to(TargetState.QUEUED))
            effects += Effects(audit=[_audit(job, "copy.queued", job.id, out.region, out.message or "")])
            told.append(out)
        elif out.step is Step.RETRY:
            count["errors"] = count.get("errors", 0) + 1
            count["next_at"] = out.retry_at
        else:
            failed = target.to(TargetState.FAILED, finished_at=now, error=out.message)
            job, ended = finish_target(job, failed, now, policy)
            effects += ended
            told.append(out)
    job = replace(job, result={**job.result, "targets": counters})
    if told:
        key = "copy:" + "+".join(sorted(f"{o.region}={o.step}" for o in told))
        effects += Effects(notices=[notices.respond(job, progress_text(job, told), key=key)])
    return job, effects


def _audit(job: Job, action: str, target: str, region: str, detail: str = "") -> AuditEntry:
    return AuditEntry(
        actor=job.requester,
        action=action,
        target=target,
        detail=detail or f"job {job.id} from {job.params.get('image_id')}",
        account=job.account or "",
        region=region,
    )


# the service --------------------------------------------------------------------------------------


class Copying:
    def __init__(
        self,
        jobs: JobStore,
        ec2: Ec2,
        settings: CopySettings,
        policy: TrackPolicy,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._jobs = jobs
        self._ec2 = ec2
        self._settings = settings
        self._policy = policy
        self._clock = clock

    # ack path: Redis only ------------------------------------------------------------------------

    def request(self, cmd: Copy, caller: Caller) -> Reply:
        now = self._clock()
        params: dict[str, Any] = {
            "image_id": cmd.ami_id,
            "source_region": cmd.from_region,
            "name": cmd.name,
            "encrypted": cmd.encrypted,
            "kms_key": cmd.kms_key,
        }
        for _ in range(5):
            job = Job(
                id=new_job_id(),
                kind=JobKind.COPY,
                requester=caller.user,
                channel=caller.channel,
                team=caller.team,
                region=cmd.from_region,
                account=cmd.account,
                response_url=caller.response_url,
                created_at=now,
                params=params,
                targets=tuple(Target(region=region) for region in cmd.to_regions),
                deadline=now + self._settings.max_wait,
            )
            audit = AuditEntry(
                actor=caller.user,
                action="copy.requested",
                target=job.id,
                detail=f"copy {cmd.ami_id} from {cmd.from_region} to {', '.join(cmd.to_regions)}",
                account=cmd.account or "",
                region=cmd.from_region,
            )
            try:
                self._jobs.create(job, Effects(work=[(f"job:{job.id}", now)], audit=[audit]))
            except JobExists:
                continue
            return copy_accepted(job)
        raise RuntimeError("could not allocate a job id")

    # worker --------------------------------------------------------------------------------------

    def start(self, job: Job) -> float | None:
        """Make the CopyImage calls of the targets still waiting. Returns when to try again, if ever."""
        if job.state not in (JobState.QUEUED, JobState.TRACKING):
            return None
        waiting = [t for t in job.targets if t.state in WAITING]
        if not waiting:
            return None
        now = self._clock()
        if now >= job.deadline:
            given_up = [Outcome(t.region, Step.FAILED, message=self._too_late(job, t, now)) for t in waiting]
            self._jobs.update(job.id, lambda j: apply_outcomes(j, given_up, now, self._policy))
            return None
        if not job.params.get("source_checked"):
            checked = self._check_source(job)
            if not isinstance(checked, Job):
                return checked
            job = checked
        later = {t.region: at for t in waiting if (at := _next_at(job, t.region)) > now}
        regions = [t.region for t in waiting if t.region not in later]
        if not regions:
            return min(later.values())
        counted = self._jobs.update(job.id, lambda j: _count_attempts(j, regions))
        if counted is None:
            return None
        outcomes = [self._copy_one(counted, counted.target(region)) for region in regions]
        finished = self._clock()
        self._jobs.update(job.id, lambda j: apply_outcomes(j, outcomes, finished, self._policy))
        retries = [o.retry_at for o in outcomes if o.retry_at is not None] + list(later.values())
        return min(retries) if retries else None

    def _check_source(self, job: Job) -> Job | float | None:
        """Read the source image once: its name and description become the copies' defaults.
        Returns the updated job, or what `start` returns (a retry time, or None when it failed)."""
        image_id, region = job.params["image_id"], job.params.get("source_region") or job.region
        try:
            image = self._ec2.own_image(job.account, region, image_id)
        except AwsError as exc:
            tries = int(job.result.get("source_attempts", 0))
            if exc.retryable and tries + 1 < MAX_ATTEMPTS:
                self._jobs.update(
                    job.id,
                    lambda j: (replace(j, result={**j.result, "source_attempts": tries + 1}), Effects()),
                )
                return self._clock() + retry_delay(tries, self._settings.retry_base)
            error = exc.message
            self._jobs.update(job.id, lambda j: self._failed(j, error))
            return None
        problem = source_problem(image, image_id, region)
        if problem is not None or image is None:
            why = problem or ""
            self._jobs.update(job.id, lambda j: self._failed(j, why))
            return None
        name = job.params.get("name") or image.name
        description = image.description or default_description(image_id, region, name)

        def resolved(j: Job) -> tuple[Job, Effects] | None:
            if j.params.get("source_checked"):
                return None
            params = {**j.params, "name": name, "description": description, "source_checked": True}
            return replace(j, params=params), Effects()

        self._jobs.update(job.id, resolved)
        return self._jobs.get(job.id)

    def _copy_one(self, job: Job, target: Target) -> Outcome:
        region = target.region
        count = job.result.get("targets", {}).get(region, {})
        earlier = int(count.get("attempts", 1)) - 1  # attempts before this one
        now = self._clock()
        try:
            # an earlier attempt may have copied before its answer was lost: look first
            image_id = self._ec2.image_for_job(job.account, region, job.id) if earlier else None
            if image_id is None:
                image_id = self._ec2.copy_image(
                    job.account,
                    region,
                    source_image_id=job.params["image_id"],
                    source_region=job.params.get("source_region") or job.region,
                    name=job.params["name"],
                    description=job.params.get("description"),
                    encrypted=bool(job.params.get("encrypted")),
                    kms_key=job.params.get("kms_key"),
                    client_token=client_token(job.id, region),
                )
                # moto ignores TagSpecifications on CopyImage, and CopyImageTags may bring the
                # source's amibot tags: set ours after the copy (a retry gets the same image back)
                self._ec2.tag_resource(
                    job.account, region, image_id, {REQUESTER_TAG: job.requester, JOB_TAG: job.id}
                )
        except AwsError as exc:
            if exc.code in COPY_LIMIT_CODES:
                refusals = int(count.get("refusals", 0))
                return Outcome(
                    region,
                    Step.QUEUED,
                    message=queued_message(region, _aws_text(exc)),
                    retry_at=now + retry_delay(refusals, self._settings.retry_base),
                )
            errors = int(count.get("errors", 0))
            if exc.retryable and errors + 1 < MAX_ATTEMPTS:
                return Outcome(
                    region, Step.RETRY, retry_at=now + retry_delay(errors, self._settings.retry_base)
                )
            return Outcome(region, Step.FAILED, message=exc.message)
        return Outcome(region, Step.STARTED, image_id=image_id)

    def _too_late(self, job: Job, target: Target, now: float) -> str:
        waited = notices.elapsed(job.created_at, now)
        if target.state is TargetState.QUEUED:
            return f"AWS still refused the copy after {waited} (concurrent copy limit); not copied"
        return f"the copy could not be started within {waited}"

    def _failed(self, job: Job, error: str) -> tuple[Job, Effects] | None:
        """The source cannot be copied: every waiting target and the job fail, told once."""
        if job.state is not JobState.QUEUED:
            return None
        now = self._clock()
        for target in job.targets:
            if target.state in WAITING:
                job = job.with_target(target.to(TargetState.FAILED, finished_at=now, error=error))
        job = job.to(JobState.FAILED, finished_at=now, error=error)
        audit = AuditEntry(
            actor=job.requester,
            action="copy.failed",
            target=job.id,
            result=error,
            account=job.account or "",
            region=job.params.get("source_region") or job.region,
        )
        return job, Effects(
            notices=[notices.respond(job, notices.job_failed_to_start(job, error), key="failed")],
            audit=[audit],
        )


def _count_attempts(job: Job, regions: Sequence[str]) -> tuple[Job, Effects] | None:
    """Count an attempt for each target about to be tried, before the calls: after a crash
    mid-call the next attempt knows to look for the copy first."""
    if job.state not in (JobState.QUEUED, JobState.TRACKING):
        return None
    counters = {region: dict(c) for region, c in job.result.get("targets", {}).items()}
    for region in regions:
        count = counters.setdefault(region, {})
        count["attempts"] = int(count.get("attempts", 0)) + 1
    return replace(job, result={**job.result, "targets": counters}), Effects()


def _next_at(job: Job, region: str) -> float:
    """When a waiting target is due for its next attempt (0: now)."""
    return float(job.result.get("targets", {}).get(region, {}).get("next_at") or 0.0)


def _aws_text(exc: AwsError) -> str:
    cause = exc.__cause__
    response = getattr(cause, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Message", ""))
    return exc.message
