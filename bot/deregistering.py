"""`/ami deregister`: check, ask a second person, then deregister and delete the snapshots.

1. ack path: record a check task (Redis only) and answer "checking".
2. worker (check): refuse with the reason if the AMI is missing or not owned, in use (instance,
   launch template version, launch configuration, auto scaling group), protected by tag or by
   deregistration protection; otherwise create the approval and post it for approval.
3. once approved: a deregistration job re-checks everything (things change in 24 hours),
   deregisters, and deletes each snapshot no other AMI uses, reporting per snapshot.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from bot import approval_messages as am
from bot.approvals import Approval
from bot.aws.ec2 import Ec2
from bot.aws.errors import IMAGE_GONE_CODES
from bot.commands import Deregister
from bot.context import Caller, Reply
from bot.errors import AwsError
from bot.executing import finished, mark_running, result_notices
from bot.ids import new_job_id
from bot.images import Image
from bot.models import Job, JobKind
from bot.notices import account_note, in_account
from bot.snapshots import delete_unshared, shared_with
from bot.store.approvals import ApprovalStore
from bot.store.effects import AuditEntry, Effects
from bot.store.jobs import JobStore
from bot.tasks import Task, Tasks

log = logging.getLogger(__name__)

CHECK_TASK = "deregister-check"
SHOW_USES = 5


@dataclass(frozen=True)
class DeregisterSettings:
    approval_channel: str | None
    approval_ttl: float
    protect_tag: str


def refusal(
    image: Image | None,
    image_id: str,
    region: str,
    uses: tuple[Any, ...],
    unresolved: tuple[str, ...],
    protect_tag: str,
) -> str | None:
    """Why this AMI must not be deregistered, or None (pure)."""
    if image is None:
        return f"image {image_id} not found in {region}, or not owned by this account"
    if protect_tag in image.tags:
        return f"it carries the protect tag `{protect_tag}` (`/ami unprotect {image_id}` removes it)"
    if image.deregistration_protection:
        return "deregistration protection is enabled on it (turn it off in EC2 first)"
    if uses:
        shown = ", ".join(u.describe() for u in uses[:SHOW_USES])
        more = f" and {len(uses) - SHOW_USES} more" if len(uses) > SHOW_USES else ""
        return f"it is in use by {shown}{more}"
    if unresolved:
        refs = "; ".join(unresolved[:3])
        return (
            f"amibot could not resolve every launch template reference, so it cannot prove it unused: {refs}"
        )
    return None


class Deregistering:
    def __init__(
        self,
        tasks: Tasks,
        approvals: ApprovalStore,
        jobs: JobStore,
        ec2: Ec2,
        settings: DeregisterSettings,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._tasks = tasks
        self._approvals = approvals
        self._jobs = jobs
        self._ec2 = ec2
        self._settings = settings
        self._clock = clock
        tasks.register(CHECK_TASK, self.check)

    # ack path ---------------------------------------------------------------------------------

    def request(self, cmd: Deregister, caller: Caller) -> Reply:
        payload = {
            "image_id": cmd.ami_id,
            "region": cmd.region,
            "account": cmd.account,
            "keep_snapshots": cmd.keep_snapshots,
            "reason": cmd.reason,
        }
        audit = AuditEntry(
            actor=caller.user,
            action="deregister.requested",
            target=cmd.ami_id,
            detail=cmd.reason or "",
            account=cmd.account or "",
            region=cmd.region,
        )
        self._tasks.submit(CHECK_TASK, caller, payload, Effects(audit=[audit]))
        return Reply(
            f"🔎 Checking `{cmd.ami_id}` in {cmd.region}{in_account(cmd.account)} before asking for approval…"
        )

    # worker: the checks, then the approval ------------------------------------------------------

    def check(self, task: Task) -> Effects:
        p = task.payload
        image_id, region, account = p["image_id"], p["region"], p.get("account")
        image = self._ec2.own_image(account, region, image_id)
        usage = self._ec2.uses(account, region, [image_id]) if image is not None else None
        why = refusal(
            image,
            image_id,
            region,
            usage.uses.get(image_id, ()) if usage else (),
            usage.unresolved if usage else (),
            self._settings.protect_tag,
        )
        if why is not None or image is None:
            audit = AuditEntry(
                actor=task.user,
                action="deregister.refused",
                target=image_id,
                result=why or "",
                account=account or "",
                region=region,
            )
            text = f"⛔ Not deregistering `{image_id}` in {region}{in_account(account)}: {why}"
            return Effects(notices=[task.answer(text)], audit=[audit])
        now = self._clock()
        approval_id, existing = self._approvals.id_for(task.id)
        approval = Approval(
            id=approval_id,
            kind="deregister",
            requester=task.user,
            channel=task.channel,
            team=task.team,
            account=account,
            region=region,
            reason=p.get("reason"),
            response_url=task.response_url,
            created_at=now,
            expires_at=now + self._settings.approval_ttl,
            subject={
                "image_id": image.image_id,
                "name": image.name,
                "creation_date": image.creation_date.isoformat(),
                "deprecation_time": image.deprecation_time.isoformat() if image.deprecation_time else None,
                "keep_snapshots": bool(p.get("keep_snapshots")),
                "snapshots": [{"id": s.snapshot_id, "size_gib": s.size_gib} for s in image.snapshots],
                "task": task.id,
            },
        )
        if existing is None:
            channel = self._settings.approval_channel or task.channel
            audit = AuditEntry(
                actor=task.user,
                action="approval.requested",
                target=approval.id,
                detail=f"deregister {image_id}",
                account=account or "",
                region=region,
            )
            self._approvals.create(
                approval,
                Effects(notices=[am.post_request(approval, channel, am.deregister_summary)], audit=[audit]),
            )
        channel = self._settings.approval_channel or task.channel
        return Effects(
            notices=[
                task.answer(
                    f"📨 Approval `{approval.id}` requested in <#{channel}>: an approver must approve "
                    f"before `{image_id}` is deregistered in {region}{in_account(account)}. "
                    "`/ami status` shows it; you can cancel it there."
                )
            ]
        )

    # once approved: the job ----------------------------------------------------------------------

    def job_for(self, approval: Approval, now: float) -> Job:
        """The deregistration job an approval starts (pure)."""
        return Job(
            id=new_job_id(),
            kind=JobKind.DEREGISTER,
            requester=approval.requester,
            channel=approval.channel,
            team=approval.team,
            region=approval.region,
            account=approval.account,
            response_url=approval.response_url,
            created_at=now,
            params={**approval.subject, "approval_id": approval.id, "approved_by": approval.decided_by},
        )

    def execute(self, job: Job) -> float | None:
        """Run (or resume) a deregistration job. Progress is kept in job.result, so a crash resumes."""
        if job.finished:
            return None
        p, r = job.params, dict(job.result)
        image_id, region, account = p["image_id"], job.region, job.account
        job = mark_running(self._jobs, job)
        try:
            if not r.get("deregistered"):
                image = self._ec2.own_image(account, region, image_id)
                if image is None and not r.get("deregistering"):
                    r["note"] = "the image was already gone"
                elif image is not None:
                    usage = self._ec2.uses(account, region, [image_id])
                    why = refusal(
                        image,
                        image_id,
                        region,
                        usage.uses.get(image_id, ()),
                        usage.unresolved,
                        self._settings.protect_tag,
                    )
                    if why is not None:
                        return self._finish(job, r, failed=f"not deregistered: {why}")
                    # in `r` too: a retryable error (a timeout after AWS acted) saves `r` below
                    r["deregistering"] = True
                    self._save(job, r)
                    try:
                        reported = self._ec2.deregister(
                            account, region, image_id, delete_snapshots=not p.get("keep_snapshots")
                        )
                    except AwsError as exc:
                        if exc.code not in IMAGE_GONE_CODES:
                            raise
                        # an earlier attempt of this call worked but its answer was lost (and retried)
                        reported, r["note"] = {}, "the image was already gone"
                    r["aws_snapshot_results"] = reported
                r["deregistered"] = True
                r.pop("deregistering", None)
                self._save(job, r)
            if not p.get("keep_snapshots"):
                again = self._delete_snapshots(job, r)
                if again is not None:
                    return again
        except AwsError as exc:
            if exc.retryable:
                self._save(job, r)
                return self._clock() + 30
            return self._finish(job, r, failed=exc.message)
        return self._finish(job, r)

    def _delete_snapshots(self, job: Job, r: dict[str, Any]) -> float | None:
        account, region = job.account, job.region
        outcomes: dict[str, str] = dict(r.get("snapshots", {}))
        todo = [s["id"] for s in job.params.get("snapshots", []) if s["id"] not in outcomes]
        if not todo:
            return None
        others = self._ec2.own_images(account, region)
        attempts = int(r.get("snapshot_attempts", 0))
        done, retry = delete_unshared(
            self._ec2,
            account,
            region,
            todo,
            shared=shared_with(others, {job.params["image_id"]}, todo),
            deleted_by_aws=r.get("aws_snapshot_results", {}),
            attempt=attempts,
        )
        r["snapshots"] = {**outcomes, **done}
        if retry:  # deregistration is still settling (InvalidSnapshot.InUse): try again shortly
            r["snapshot_attempts"] = attempts + 1
            self._save(job, r)
            return self._clock() + min(60.0, 2.0 ** (attempts + 1))
        self._save(job, r)
        return None

    def _save(self, job: Job, result: dict[str, Any]) -> None:
        self._jobs.update(
            job.id, lambda j: (replace(j, result=dict(result)), Effects()) if not j.finished else None
        )

    def _finish(self, job: Job, r: dict[str, Any], failed: str | None = None) -> float | None:
        now = self._clock()
        text = result_text(job, r, failed)

        def change(j: Job) -> tuple[Job, Effects] | None:
            if j.finished:
                return None
            done = finished(j, now, r, failed)
            notices = result_notices(j, self._approvals.get(j.params["approval_id"]), text, "result")
            audit = AuditEntry(
                actor=j.params.get("approved_by") or "amibot",
                action="deregister.executed",
                target=j.params["image_id"],
                result=failed or "ok",
                detail=snapshot_summary(r),
                account=j.account or "",
                region=j.region,
            )
            return done, Effects(notices=notices, audit=[audit])

        self._jobs.update(job.id, change)
        return None


def snapshot_summary(r: dict[str, Any]) -> str:
    outcomes = r.get("snapshots", {})
    return ", ".join(f"{sid} {outcome}" for sid, outcome in sorted(outcomes.items())) or "no snapshots"


def result_text(job: Job, r: dict[str, Any], failed: str | None) -> str:
    image_id = job.params["image_id"]
    head = (
        f"❌ `{image_id}` {failed}"
        if failed
        else f"🗑️ `{image_id}` ({job.params.get('name') or 'no name'}) deregistered"
    )
    lines = [f"{head} in {job.region}{account_note(job)} — job `{job.id}`, requested by <@{job.requester}>"]
    if r.get("note"):
        lines.append(f"note: {r['note']}")
    if job.params.get("keep_snapshots"):
        lines.append("snapshots kept (--keep-snapshots)")
    for sid, outcome in sorted(r.get("snapshots", {}).items()):
        icon = "✅" if outcome.startswith("deleted") else "⚠️" if outcome.startswith("failed") else "ℹ️"
        lines.append(f"{icon} snapshot `{sid}`: {outcome}")
    return "\n".join(lines)
