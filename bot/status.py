"""`/ami status [JOB_ID]`: in-flight jobs, or one job (re-tracking a "still pending" one). Redis only."""

from __future__ import annotations

import time
from collections.abc import Callable

from bot import notices
from bot.commands import Status
from bot.context import Caller, Reply
from bot.errors import UserError
from bot.models import Job, JobState
from bot.store.effects import AuditEntry, Effects
from bot.store.jobs import JobStore
from bot.tracker import retrack

SHOW_AT_MOST = 20


class StatusService:
    def __init__(
        self,
        jobs: JobStore,
        *,
        max_wait: float,
        clock: Callable[[], float] = time.time,
        extra_sections: Callable[[Caller], list[str]] = lambda caller: [],
    ) -> None:
        self._jobs = jobs
        self._max_wait = max_wait
        self._clock = clock
        self._extra_sections = extra_sections

    def show(self, cmd: Status, caller: Caller) -> Reply:
        if cmd.job_id is not None:
            return self._one(cmd.job_id, caller)
        now = self._clock()
        active = self._jobs.active()
        lines = [notices.job_line(job, now) for job in active[:SHOW_AT_MOST]]
        if len(active) > SHOW_AT_MOST:
            lines.append(f"… and {len(active) - SHOW_AT_MOST} more")
        sections = [
            "*In-flight jobs*\n" + ("\n".join(lines) if lines else "none"),
            *self._extra_sections(caller),
        ]
        text = "\n\n".join(sections)
        return Reply(text)

    def _one(self, job_id: str, caller: Caller) -> Reply:
        job = self._jobs.get(job_id)
        if job is None:
            raise UserError(f"no job {job_id} (finished jobs are kept for 30 days)", "/ami status [JOB_ID]")
        if job.state is JobState.TIMED_OUT:
            now = self._clock()

            def again(j: Job) -> tuple[Job, Effects] | None:
                if j.state is not JobState.TIMED_OUT:
                    return None
                audit = AuditEntry(actor=caller.user, action="job.retracked", target=j.id)
                return retrack(j, now, self._max_wait), Effects(audit=[audit])

            updated = self._jobs.update(job_id, again)
            if updated is not None:
                return notices.retracked(updated)
            job = self._jobs.get(job_id) or job
        return notices.job_detail(job, self._clock())
