"""`/ami create`: record the job on the ack path, call CreateImage from a worker.

The ack path only writes Redis (the job and its due work, in one transaction). A worker
then calls CreateImage; a retried attempt first looks for the image tagged with the job's
id, so a crash between CreateImage and recording its result never makes a second image.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from bot import notices
from bot.aws.ec2 import JOB_TAG, REQUESTER_TAG, Ec2
from bot.commands import Create
from bot.context import Caller, Reply
from bot.errors import AwsError
from bot.ids import new_job_id
from bot.models import Job, JobKind, JobState, Target, TargetState
from bot.store.effects import AuditEntry, Effects
from bot.store.jobs import JobExists, JobStore

MAX_ATTEMPTS = 8
DUPLICATE_NAME = "InvalidAMIName.Duplicate"
_NOT_IN_NAME = re.compile(r"[^A-Za-z0-9 ()\[\]./\-'@_]")


def default_name(base: str, now: float) -> str:
    """`<instance Name tag or id>-<UTC yyyy-mm-dd-HHMM>`, made a valid AMI name."""
    stamp = datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%d-%H%M")
    clean = _NOT_IN_NAME.sub("-", base).strip() or "image"
    return f"{clean[: 128 - len(stamp) - 1]}-{stamp}"


def backoff(attempt: int) -> float:
    return float(min(300, 2 ** max(0, attempt)))


@dataclass(frozen=True)
class CreateSettings:
    max_wait: float  # seconds


class Creating:
    def __init__(
        self,
        jobs: JobStore,
        ec2: Ec2,
        settings: CreateSettings,
        *,
        clock: Callable[[], float] = time.time,
        wake_worker: Callable[[], None] = lambda: None,
    ) -> None:
        self._jobs = jobs
        self._ec2 = ec2
        self._settings = settings
        self._clock = clock
        self._wake_worker = wake_worker

    # ack path: Redis only ------------------------------------------------------------------

    def request(self, cmd: Create, caller: Caller) -> Reply:
        now = self._clock()
        params = {
            "instance_id": cmd.instance_id,
            "name": cmd.name,
            "description": cmd.description,
            "reboot": cmd.reboot,
            "tags": [list(pair) for pair in cmd.tags],
        }
        for _ in range(5):
            job = Job(
                id=new_job_id(),
                kind=JobKind.CREATE,
                requester=caller.user,
                channel=caller.channel,
                team=caller.team,
                region=cmd.region,
                account=cmd.account,
                response_url=caller.response_url,
                created_at=now,
                params=params,
                targets=(Target(region=cmd.region),),
                deadline=now + self._settings.max_wait,
            )
            effects = Effects(
                work=[(f"job:{job.id}", now)],
                audit=[
                    AuditEntry(
                        actor=caller.user,
                        action="create.requested",
                        target=job.id,
                        detail=f"image of {cmd.instance_id}",
                        account=cmd.account or "",
                        region=cmd.region,
                    )
                ],
            )
            try:
                self._jobs.create(job, effects)
            except JobExists:
                continue
            self._wake_worker()
            return notices.create_accepted(job)
        raise RuntimeError("could not allocate a job id")

    # worker ----------------------------------------------------------------------------------

    def start(self, job: Job) -> float | None:
        """Make the CreateImage call of a queued create job. Returns when to try again, if ever."""
        target = job.targets[0]
        if job.state is not JobState.QUEUED or target.state is not TargetState.REQUESTED:
            return None
        attempt = int(job.result.get("attempts", 0))
        self._jobs.update(
            job.id, lambda j: (replace(j, result={**j.result, "attempts": attempt + 1}), Effects())
        )
        try:
            image_id = self._ec2.image_for_job(job.account, job.region, job.id) if attempt else None
            name = job.params.get("name")
            if image_id is None:
                instance_id = job.params["instance_id"]
                if not name:
                    base = self._ec2.instance_name(job.account, job.region, instance_id)
                    name = default_name(base, self._clock())
                tags = {k: v for k, v in job.params.get("tags", [])}
                tags.update({REQUESTER_TAG: job.requester, JOB_TAG: job.id})
                try:
                    image_id = self._ec2.create_image(
                        job.account,
                        job.region,
                        instance_id=instance_id,
                        name=name,
                        description=job.params.get("description"),
                        reboot=bool(job.params.get("reboot")),
                        tags=tags,
                    )
                except AwsError as exc:
                    if exc.code != DUPLICATE_NAME:
                        raise
                    image_id = self._own_image_named(job, name, exc)
        except AwsError as exc:
            if exc.retryable and attempt + 1 < MAX_ATTEMPTS:
                return self._clock() + backoff(attempt)
            error = exc.message
            self._jobs.update(job.id, lambda j: self._failed(j, error))
            return None
        self._jobs.update(job.id, lambda j: self._started(j, image_id, name))
        return None

    def _own_image_named(self, job: Job, name: str, duplicate: AwsError) -> str:
        """AWS says an image is already called `name`. It is this job's own when an earlier
        CreateImage worked but its answer was lost and the retry reused the name: then its id.
        Another image's name: `duplicate` again. Not shown by DescribeImages yet: a retryable error."""
        try:
            named = self._ec2.image_named(job.account, job.region, name)
        except AwsError:
            named = None
        if named is None:
            raise AwsError(duplicate.message, duplicate.code, retryable=True)
        if named[1] != job.id:
            raise duplicate
        return named[0]

    def _started(self, job: Job, image_id: str, name: str | None) -> tuple[Job, Effects] | None:
        if job.state is not JobState.QUEUED:
            return None
        now = self._clock()
        target = job.targets[0].to(TargetState.PENDING, image_id=image_id, started_at=now)
        job = replace(job, params={**job.params, "name": name or job.params.get("name")})
        job = job.with_target(target).to(JobState.TRACKING)
        return job, Effects(
            notices=[notices.respond(job, notices.create_started(job, target), key="started")],
            audit=[
                AuditEntry(
                    actor=job.requester,
                    action="create.started",
                    target=image_id,
                    detail=f"job {job.id} from {job.params['instance_id']}",
                    account=job.account or "",
                    region=job.region,
                )
            ],
        )

    def _failed(self, job: Job, error: str) -> tuple[Job, Effects] | None:
        if job.state is not JobState.QUEUED:
            return None
        now = self._clock()
        target = job.targets[0].to(TargetState.FAILED, finished_at=now, error=error)
        job = job.with_target(target).to(JobState.FAILED, finished_at=now, error=error)
        return job, Effects(
            notices=[notices.respond(job, notices.job_failed_to_start(job, error), key="failed")],
            audit=[
                AuditEntry(
                    actor=job.requester,
                    action="create.failed",
                    target=job.id,
                    result=error,
                    account=job.account or "",
                    region=job.region,
                )
            ],
        )
