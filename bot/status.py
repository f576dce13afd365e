"""`/ami status [JOB_ID]`: in-flight jobs and pending approvals, or one job (re-tracking a
"still pending" one). Redis only, answered in the ack."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from bot import blocks as bk
from bot import notices
from bot.approvals import Approval
from bot.commands import Status
from bot.context import Caller, Reply
from bot.errors import UserError
from bot.ids import ActionId
from bot.models import Job, JobState
from bot.store.approvals import ApprovalStore
from bot.store.effects import AuditEntry, Effects
from bot.store.jobs import JobStore
from bot.tracker import retrack

SHOW_AT_MOST = 10


def approval_line(approval: Approval) -> str:
    what = approval.subject.get("image_id") or approval.subject.get("summary") or ""
    return (
        f"`{approval.id}` {approval.kind} {what} in {approval.region or 'all regions'}"
        f"{notices.in_account(approval.account)} — asked by "
        f"<@{approval.requester}>, expires {notices.when(approval.expires_at)}"
    )


class StatusService:
    def __init__(
        self,
        jobs: JobStore,
        approvals: ApprovalStore,
        *,
        max_wait: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._jobs = jobs
        self._approvals = approvals
        self._max_wait = max_wait
        self._clock = clock

    def show(self, cmd: Status, caller: Caller) -> Reply:
        if cmd.job_id is not None:
            return self._one(cmd.job_id, caller)
        now = self._clock()
        active, total = self._jobs.active(SHOW_AT_MOST), self._jobs.active_count()
        pending = sorted(self._approvals.pending(), key=lambda a: a.created_at)
        lines = [notices.job_line(job, now) for job in active]
        if total > len(active):
            lines.append(f"… and {total - len(active)} more")
        jobs_text = "*In-flight jobs*\n" + ("\n".join(lines) if lines else "none")
        blocks: list[dict[str, Any]] = [
            bk.section(jobs_text),
            bk.section("*Pending approvals*" + ("" if pending else "\nnone")),
        ]
        for approval in pending[:SHOW_AT_MOST]:
            mine = approval.requester == caller.user
            cancel = bk.button("Cancel", ActionId.CANCEL, approval.id) if mine else None
            blocks.append(bk.section(approval_line(approval), accessory=cancel))
        text = (
            jobs_text + "\n\n*Pending approvals*\n" + ("\n".join(approval_line(a) for a in pending) or "none")
        )
        return Reply(text, blocks=blocks[:50])

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
