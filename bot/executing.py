"""What the jobs that carry out an approved request (deregister, prune) share: starting to run,
and the result posted where it was asked and in the approval's thread."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bot import approval_messages as am
from bot.approvals import Approval
from bot.messages import Delivery, OutboxItem
from bot.models import Job, JobState
from bot.store.effects import Effects
from bot.store.jobs import JobStore
from bot.tasks import is_person


def mark_running(jobs: JobStore, job: Job) -> Job:
    """QUEUED → RUNNING (once); the job as stored."""
    if job.state is not JobState.QUEUED:
        return job
    started = jobs.update(
        job.id, lambda j: (j.to(JobState.RUNNING), Effects()) if j.state is JobState.QUEUED else None
    )
    return started or job


def finished(job: Job, now: float, result: dict[str, Any], failed: str | None) -> Job:
    state = JobState.FAILED if failed else JobState.SUCCEEDED
    return job.to(state, finished_at=now, error=failed, result=dict(result))


def result_notices(
    job: Job, approval: Approval | None, text: str, key: str, followups: Sequence[str] = ()
) -> list[OutboxItem]:
    """The result in the asking channel (a DM if closed to the bot) and in the approval's thread."""
    notices = [
        OutboxItem(
            id=f"notice:{job.id}:{key}@{job.channel}",
            kind=Delivery.POST,
            text=text,
            channel=job.channel,
            fallback_user=job.requester if is_person(job.requester) else None,
            followups=tuple(followups),
        )
    ]
    thread = am.in_thread(approval, text, f"{key}:{job.id}") if approval else None
    if thread is not None and thread.channel != job.channel:
        notices.append(thread)
    return notices
