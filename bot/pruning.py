"""`/ami prune`: plan from the policy, post the plan for approval, execute it as a resumable job.

- The plan (bot.prune, pure) never acts on an AMI that is in use (non-terminated instance,
  any launch template version, launch configuration, auto scaling group), protected (tag or
  deregistration protection), among the newest `keep-last` of its family, or younger than the
  retention. If amibot cannot resolve every launch template reference in a region, nothing in
  that region is pruned.
- `--dry-run` posts the plan with no buttons. Otherwise the plan goes to the approval channel
  with Approve/Reject; on approval a job re-plans against fresh inventory and deregisters only
  AMIs that were approved *and* are still prunable, then deletes their snapshots (never one a
  remaining AMI uses). Progress is saved after every AMI, so a crash resumes without repeating;
  a re-check older than `RECHECK_MAX_AGE_S` is made again before more AMIs go (a job resumed
  long after a crash, or a long one, never acts on stale in-use data).
- Progress is shown by updating the approval message in place; the final report (per-AMI
  outcome and its snapshots) is posted where the prune was asked, and in the approval thread.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from bot import approval_messages as am
from bot import blocks as bk
from bot import prune
from bot.approvals import Approval
from bot.aws.ec2 import Ec2
from bot.aws.errors import IMAGE_GONE_CODES
from bot.aws.inventory import Usage
from bot.commands import Prune
from bot.context import Caller, Reply
from bot.errors import AwsError
from bot.executing import finished, mark_running, result_notices
from bot.ids import new_job_id
from bot.images import Image
from bot.messages import Delivery, OutboxItem
from bot.models import Job, JobKind
from bot.notices import in_account, when
from bot.scheduler import cron_trigger
from bot.snapshots import delete_unshared, shared_with
from bot.store.approvals import ApprovalStore
from bot.store.effects import AuditEntry, Effects
from bot.store.jobs import JobStore
from bot.tasks import Task, Tasks, is_person

log = logging.getLogger(__name__)

PLAN_TASK = "prune-plan"
SHOWN = 15  # AMIs listed in the plan message itself; the rest go in its thread
PER_REPLY = 40  # AMIs per thread reply
BATCH = 25  # AMIs deregistered per run of the job before it saves and yields
PROGRESS_EVERY_S = 5.0  # the approval message shows progress at most this often
RECHECK_MAX_AGE_S = 300.0  # in-use data older than this is read again before deregistering more
RETRY_S = 30.0  # after a retryable AWS error (botocore has already retried)


@dataclass(frozen=True)
class PruneSettings:
    regions: tuple[str, ...]
    account_regions: Mapping[str, tuple[str, ...]]  # alias -> its regions (if restricted)
    retention: timedelta
    keep_last: int
    protect_tag: str
    price_per_gib_month: float
    approval_channel: str | None
    approval_ttl: float


@dataclass(frozen=True)
class RegionPlan:
    region: str
    plan: prune.Plan | None
    blocked: str | None = None  # why nothing in this region may be pruned


def chunks(lines: Sequence[str], size: int) -> list[str]:
    return ["\n".join(lines[i : i + size]) for i in range(0, len(lines), size)]


def summarize(plans: Sequence[RegionPlan], policy: prune.Policy, account: str | None) -> dict[str, Any]:
    """What the approval message shows and what the job may execute (JSON data)."""
    counts: dict[str, int] = {}
    regions: dict[str, list[dict[str, Any]]] = {}
    blocked: dict[str, str] = {}
    freed = 0
    for rp in plans:
        if rp.blocked or rp.plan is None:
            blocked[rp.region] = rp.blocked or "not planned"
            continue
        for key, value in rp.plan.counts().items():
            counts[key] = counts.get(key, 0) + value
        freed += rp.plan.freed_gib
        regions[rp.region] = [
            {
                "id": i.image.image_id,
                "name": i.image.name,
                "gib": i.image.size_gib,
                "created": i.image.creation_date.isoformat(),
                "family": i.family,
            }
            for i in rp.plan.to_prune
        ]
    return {
        "account": account,
        "counts": counts,
        "regions": regions,
        "blocked": blocked,
        "freed_gib": freed,
        "saving": round(freed * policy.price_per_gib_month, 2),
        "policy": {
            "retention_days": policy.retention.total_seconds() / 86400,
            "keep_last": policy.keep_last,
            "protect_tag": policy.protect_tag,
            "price": policy.price_per_gib_month,
        },
    }


def summary_text(s: Mapping[str, Any]) -> str:
    c = s["counts"]
    total = sum(len(v) for v in s["regions"].values())
    pol = s["policy"]
    lines = [
        f"*Prune plan*{in_account(s.get('account'))}: *{total}* AMIs to deregister, {c.get('keep', 0)} kept "
        f"(retention {pol['retention_days']:g}d, keep last {pol['keep_last']} per family)",
        f"Kept because: in use {c.get('in_use', 0)} · protected {c.get('protected', 0)} · "
        f"deregistration protection {c.get('deregistration_protection', 0)} · newest of family "
        f"{c.get('keep_last', 0)} · younger than retention {c.get('retention', 0)} · not available "
        f"{c.get('not_available', 0)}",
        f"Frees {s['freed_gib']} GiB of snapshots ≈ ${s['saving']:.2f}/month "
        f"(at ${pol['price']:g} per GiB-month)",
    ]
    for region, why in sorted(s.get("blocked", {}).items()):
        lines.append(f"⛔ {region}: nothing pruned — {why}")
    return "\n".join(lines)


def listed(s: Mapping[str, Any]) -> list[str]:
    return [
        f"`{a['id']}` {a['name'] or '(no name)'} · {region} · {a['created'][:10]} · {a['gib']} GiB"
        for region, amis in sorted(s["regions"].items())
        for a in amis
    ]


def prune_summary(approval: Approval) -> tuple[str, list[dict[str, Any]]]:
    s = approval.subject
    text = summary_text(s)
    lines = listed(s)
    shown = "\n".join(lines[:SHOWN]) or "nothing"
    more = f"\n… and {len(lines) - SHOWN} more (full list in the thread)" if len(lines) > SHOWN else ""
    who = f"<@{approval.requester}>" if is_person(approval.requester) else "the prune schedule"
    head = f"🧹 {who} asks to prune AMIs"
    fallback = f"{head}: {len(lines)} to deregister{in_account(s.get('account'))}"
    return fallback, [bk.section(f"{head}\n{text}"), bk.section(shown + more)]


class Pruning:
    def __init__(
        self,
        tasks: Tasks,
        approvals: ApprovalStore,
        jobs: JobStore,
        ec2: Ec2,
        settings: PruneSettings,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._tasks = tasks
        self._approvals = approvals
        self._jobs = jobs
        self._ec2 = ec2
        self._settings = settings
        self._clock = clock
        tasks.register(PLAN_TASK, self.plan_task)

    def policy(self, older_than: timedelta | None = None, keep_last: int | None = None) -> prune.Policy:
        s = self._settings
        return prune.Policy(
            retention=older_than if older_than is not None else s.retention,
            keep_last=keep_last if keep_last is not None else s.keep_last,
            protect_tag=s.protect_tag,
            price_per_gib_month=s.price_per_gib_month,
        )

    def regions_for(self, account: str | None, region: str | None) -> list[str]:
        if region:
            return [region]
        limited = self._settings.account_regions.get(account or "")
        return list(limited or self._settings.regions)

    # ack path ------------------------------------------------------------------------------------

    def request(self, cmd: Prune, caller: Caller) -> Reply:
        self.submit(caller, cmd.account, cmd.region, cmd.older_than, cmd.keep_last, cmd.dry_run)
        regions = ", ".join(self.regions_for(cmd.account, cmd.region))
        dry = " (dry run: nothing will be deleted)" if cmd.dry_run else ""
        return Reply(f"🧮 Planning a prune of {regions}{in_account(cmd.account)}{dry}…")

    def submit(
        self,
        caller: Caller,
        account: str | None,
        region: str | None,
        older_than: timedelta | None,
        keep_last: int | None,
        dry_run: bool,
    ) -> Task:
        regions = self.regions_for(account, region)
        payload = {
            "account": account,
            "regions": regions,
            "older_than_s": older_than.total_seconds() if older_than is not None else None,
            "keep_last": keep_last,
            "dry_run": dry_run,
        }
        audit = AuditEntry(
            actor=caller.user,
            action="prune.requested",
            target=",".join(regions),
            detail="dry run" if dry_run else "",
            account=account or "",
        )
        return self._tasks.submit(PLAN_TASK, caller, payload, Effects(audit=[audit]))

    # worker: the plan -------------------------------------------------------------------------------

    def inventory(self, account: str | None, region: str) -> tuple[list[Image], Usage]:
        """Own images and where they are used, every page of every list call."""
        return self._ec2.own_images(account, region), self._ec2.uses(account, region)

    def plan_regions(
        self, account: str | None, regions: Iterable[str], policy: prune.Policy
    ) -> list[RegionPlan]:
        now = datetime.fromtimestamp(self._clock(), UTC)
        plans = []
        for region in regions:
            images, usage = self.inventory(account, region)
            if usage.unresolved:
                why = "launch template references amibot could not resolve: " + "; ".join(
                    usage.unresolved[:3]
                )
                plans.append(RegionPlan(region, None, blocked=why))
                continue
            plans.append(RegionPlan(region, prune.plan(images, usage.uses, policy, now)))
        return plans

    def plan_task(self, task: Task) -> Effects:
        p = task.payload
        account = p.get("account")
        older = timedelta(seconds=p["older_than_s"]) if p.get("older_than_s") is not None else None
        policy = self.policy(older, p.get("keep_last"))
        summary = summarize(self.plan_regions(account, p["regions"], policy), policy, account)
        lines = listed(summary)
        if p.get("dry_run") or not lines:
            return self._dry_run(task, summary, lines, nothing=not lines)
        now = self._clock()
        approval_id, existing = self._approvals.id_for(task.id)
        approval = existing or Approval(
            id=approval_id,
            kind="prune",
            requester=task.user,
            channel=task.channel,
            team=task.team,
            account=account,
            region=",".join(p["regions"]),
            response_url=task.response_url,
            created_at=now,
            expires_at=now + self._settings.approval_ttl,
            subject={**summary, "task": task.id},
        )
        channel = self._settings.approval_channel or task.channel
        if existing is None:
            post = replace(
                am.post_request(approval, channel, prune_summary), followups=self._followups(lines)
            )
            audit = AuditEntry(
                actor=task.user,
                action="approval.requested",
                target=approval.id,
                detail=f"prune {len(lines)} AMIs",
                account=account or "",
                region=approval.region,
            )
            self._approvals.create(approval, Effects(notices=[post], audit=[audit]))
        if not is_person(task.user) and channel == task.channel:
            return Effects()  # the schedule's plan: the approval message itself is the news
        text = f"📨 Prune plan `{approval.id}` ({len(lines)} AMIs) posted for approval in <#{channel}>."
        return Effects(notices=[task.answer(text)])

    def _followups(self, lines: list[str]) -> tuple[str, ...]:
        if len(lines) <= SHOWN:
            return ()
        return tuple(
            f"AMIs in this plan ({n}/{(len(lines) - 1) // PER_REPLY + 1}):\n{chunk}"
            for n, chunk in enumerate(chunks(lines, PER_REPLY), start=1)
        )

    def _dry_run(self, task: Task, summary: dict[str, Any], lines: list[str], *, nothing: bool) -> Effects:
        head = "🧹 Prune plan (dry run, nothing will be deleted)" if not nothing else "🧹 Nothing to prune"
        text = f"{head}\n{summary_text(summary)}"
        body = "\n".join(lines[:SHOWN]) or "no AMI matches the policy"
        if len(lines) > SHOWN:
            body += f"\n… and {len(lines) - SHOWN} more (full list in the thread)"
        item = OutboxItem(
            id=f"task:{task.id}:plan@{task.channel}",
            kind=Delivery.POST,
            text=f"{text}\n{body}",
            blocks=[bk.section(text), bk.section(body)],
            channel=task.channel,
            fallback_user=task.user if is_person(task.user) else None,
            followups=self._followups(lines),
        )
        return Effects(notices=[item])

    # once approved: the job ---------------------------------------------------------------------------

    def job_for(self, approval: Approval, now: float) -> Job:
        s = approval.subject
        return Job(
            id=new_job_id(),
            kind=JobKind.PRUNE,
            requester=approval.requester,
            channel=approval.channel,
            team=approval.team,
            region=approval.region,
            account=approval.account,
            response_url=approval.response_url,
            created_at=now,
            params={
                "approval_id": approval.id,
                "approved_by": approval.decided_by,
                "approved": {
                    region: [a["id"] for a in amis] for region, amis in s["regions"].items() if amis
                },
                "policy": s["policy"],
            },
        )

    def execute(self, job: Job) -> float | None:
        """One step of a prune job: (re-)check a region, or deregister the next batch. Resumable.

        `job.result` holds, per region, the re-check ("go": AMIs to deregister, "skipped": AMI ->
        why not, "snapshots": AMI -> its snapshot ids, "shared": snapshot -> an image that keeps
        it, "at": when), then "done": AMI -> outcome and "snapshots": snapshot -> outcome.
        """
        if job.finished:
            return None
        job = mark_running(self._jobs, job)
        r: dict[str, Any] = {"recheck": {}, "done": {}, "snapshots": {}, **job.result}
        try:
            for region, approved in sorted(job.params["approved"].items()):
                if self._needs_check(r, region):
                    r["recheck"][region] = self._recheck(job, region, approved, r)
                    return self._save(job, r)
            pending = [
                (region, ami)
                for region, plan in sorted(r["recheck"].items())
                for ami in plan["go"]
                if ami not in r["done"]
            ]
            for region, ami in pending[:BATCH]:
                r["done"][ami] = self._deregister(job, region, ami, r)
                self._save(job, r)
            if pending[BATCH:]:
                return self._clock()
            again = self._snapshots(job, r)
            if again is not None:
                return again
        except AwsError as exc:
            if exc.retryable:
                self._save(job, r)
                return self._clock() + RETRY_S
            return self._finish(job, r, failed=exc.message)
        return self._finish(job, r)

    def _needs_check(self, r: Mapping[str, Any], region: str) -> bool:
        """No re-check yet, or one too old while AMIs of the region still wait to go."""
        check = r["recheck"].get(region)
        if check is None:
            return True
        waiting = any(ami not in r["done"] for ami in check["go"])
        return waiting and self._clock() - float(check.get("at", 0)) > RECHECK_MAX_AGE_S

    def _recheck(self, job: Job, region: str, approved: list[str], r: Mapping[str, Any]) -> dict[str, Any]:
        """Fresh inventory: only what was approved AND is still prunable goes.

        A repeated re-check only narrows: AMIs already deregistered stay as they are, AMIs skipped
        before stay skipped, and the rest are judged again (one that vanished meanwhile was most
        likely deregistered by an attempt whose answer was lost: it stays, to have its snapshots
        deleted)."""
        previous = r["recheck"].get(region)
        done = r["done"]
        candidates = approved if previous is None else previous["go"]
        finished = [ami for ami in candidates if ami in done]
        go: list[str] = list(finished)
        skipped: dict[str, str] = dict(previous["skipped"]) if previous else {}
        snaps: dict[str, list[str]] = {ami: list(previous["snapshots"].get(ami, [])) for ami in finished}
        now = self._clock()
        pol = job.params["policy"]
        policy = self.policy(timedelta(days=pol["retention_days"]), int(pol["keep_last"]))
        fresh = self.plan_regions(job.account, [region], policy)[0]
        if fresh.plan is None:
            skipped.update({ami: f"not pruned: {fresh.blocked}" for ami in candidates if ami not in done})
            shared = previous.get("shared", {}) if previous else {}
            return {"at": now, "go": go, "skipped": skipped, "snapshots": snaps, "shared": shared}
        verdicts = {i.image.image_id: i for i in fresh.plan.items}
        for ami in candidates:
            item = verdicts.get(ami)
            if ami in done:
                continue
            if item is None and previous is not None:
                # deregistered by an attempt whose answer was lost (a crash): finish it, snapshots too
                go.append(ami)
                snaps[ami] = list(previous["snapshots"].get(ami, []))
            elif item is None:
                skipped[ami] = "already gone"
            elif item.verdict is prune.Verdict.PRUNE:
                go.append(ami)
                snaps[ami] = [s.snapshot_id for s in item.image.snapshots]
            else:
                skipped[ami] = "kept now: " + "; ".join(item.reasons)
        images = [i.image for i in fresh.plan.items]
        shared = shared_with(images, set(go), [s for ids in snaps.values() for s in ids])
        return {"at": now, "go": go, "skipped": skipped, "snapshots": snaps, "shared": shared}

    def _deregister(self, job: Job, region: str, ami: str, r: dict[str, Any]) -> str:
        try:
            reported = self._ec2.deregister(job.account, region, ami, delete_snapshots=True)
            r.setdefault("aws_snapshots", {}).update(reported)
        except AwsError as exc:
            if exc.code in IMAGE_GONE_CODES:
                return "deregistered (already gone)"
            if exc.retryable:
                raise
            return f"failed: {exc.message}"
        return "deregistered"

    def _snapshots(self, job: Job, r: dict[str, Any]) -> float | None:
        """Delete the snapshots of the deregistered AMIs, never one a remaining image uses."""
        attempt = int(r.get("snapshot_attempts", 0))
        retry_any = False
        for region, plan in sorted(r["recheck"].items()):
            gone = {ami for ami in plan["go"] if _deregistered(r["done"].get(ami, ""))}
            # an approved AMI whose deregistration failed still exists: its snapshots stay
            still_there = {s: ami for ami, ids in plan["snapshots"].items() if ami not in gone for s in ids}
            todo = list(
                dict.fromkeys(
                    s
                    for ami, ids in plan["snapshots"].items()
                    if ami in gone
                    for s in ids
                    if s not in r["snapshots"]
                )
            )
            if not todo:
                continue
            done, retry = delete_unshared(
                self._ec2,
                job.account,
                region,
                todo,
                shared={**still_there, **plan.get("shared", {})},
                deleted_by_aws=r.get("aws_snapshots", {}),
                attempt=attempt,
            )
            r["snapshots"].update(done)
            retry_any = retry_any or bool(retry)
        if retry_any:
            r["snapshot_attempts"] = attempt + 1
            self._save(job, r)
            return self._clock() + min(60.0, 2.0 ** (attempt + 1))
        return None

    def _save(self, job: Job, r: dict[str, Any]) -> float:
        """Store the progress; show it on the approval message at most every PROGRESS_EVERY_S."""
        now = self._clock()

        def change(j: Job) -> tuple[Job, Effects] | None:
            if j.finished:
                return None
            shown_at = float(j.result.get("progress_at", 0))
            shown = int(j.result.get("progress_n", 0))
            result = {**r, "progress_at": shown_at, "progress_n": shown}
            notices = []
            if now - shown_at >= PROGRESS_EVERY_S:
                item = self._on_approval_message(j, progress_text(j, r), f"progress:{j.id}:{shown + 1}")
                if item is not None:
                    notices.append(item)
                    result.update(progress_at=now, progress_n=shown + 1)
            return replace(j, result=result), Effects(notices=notices)

        self._jobs.update(job.id, change)
        return now  # run the next step at once

    def _on_approval_message(self, job: Job, line: str, key: str) -> OutboxItem | None:
        """The approval message, as decided, with `line` below it (one message updated in place)."""
        approval = self._approvals.get(job.params["approval_id"])
        if approval is None or not (approval.message_channel and approval.message_ts):
            return None
        text, blocks = am.decided_message(approval, prune_summary)
        return OutboxItem(
            id=f"approval:{approval.id}:{key}",
            kind=Delivery.UPDATE,
            text=f"{text}\n{line}",
            blocks=[*blocks, bk.section(line)],
            channel=approval.message_channel,
            ts=approval.message_ts,
        )

    def _finish(self, job: Job, r: dict[str, Any], failed: str | None = None) -> float | None:
        now = self._clock()
        text, lines = report(job, r, failed)
        head = text.splitlines()[0]

        def change(j: Job) -> tuple[Job, Effects] | None:
            if j.finished:
                return None
            done = finished(j, now, r, failed)
            approval = self._approvals.get(j.params["approval_id"])
            notices = result_notices(j, approval, text, "report", chunks(lines[SHOWN:], PER_REPLY))
            update = self._on_approval_message(j, head, f"report:{j.id}:update")
            if update is not None:
                notices.append(update)
            audit = AuditEntry(
                actor=j.params.get("approved_by") or "amibot",
                action="prune.executed",
                target=j.id,
                result=failed or "ok",
                detail=head[:200],
                account=j.account or "",
                region=j.region,
            )
            return done, Effects(notices=notices, audit=[audit])

        self._jobs.update(job.id, change)
        return None


def _deregistered(outcome: str) -> bool:
    return outcome.startswith("deregistered")


def progress_text(job: Job, r: Mapping[str, Any]) -> str:
    """One line of progress (pure)."""
    checks = r.get("recheck", {})
    total = sum(len(p["go"]) for p in checks.values())
    done = sum(1 for p in checks.values() for ami in p["go"] if ami in r.get("done", {}))
    waiting = len(job.params["approved"]) - len(checks)
    text = f"🧹 Pruning (job `{job.id}`): {done}/{total} AMIs deregistered"
    skipped = sum(len(p["skipped"]) for p in checks.values())
    if skipped:
        text += f", {skipped} skipped (no longer prunable)"
    if waiting > 0:
        text += f"; {waiting} region(s) still to re-check"
    return text


def report(job: Job, r: Mapping[str, Any], failed: str | None) -> tuple[str, list[str]]:
    """The final report (pure): the message text (a summary line, then the first `SHOWN` AMI lines)
    and every AMI line (one per approved AMI: its outcome and what happened to its snapshots)."""
    done: Mapping[str, str] = r.get("done", {})
    checks: Mapping[str, Any] = r.get("recheck", {})
    snaps: Mapping[str, str] = r.get("snapshots", {})
    ok = sorted(a for a, o in done.items() if _deregistered(o))
    bad = sorted(a for a, o in done.items() if not _deregistered(o))
    skipped = {a: why for p in checks.values() for a, why in p.get("skipped", {}).items()}
    snapshots_of = {a: ids for p in checks.values() for a, ids in p.get("snapshots", {}).items()}
    deleted = sum(1 for o in snaps.values() if o.startswith("deleted"))
    kept = sum(1 for o in snaps.values() if o.startswith("kept"))
    snap_failed = sum(1 for o in snaps.values() if o.startswith("failed"))
    head = f"❌ Prune stopped: {failed}" if failed else "🧹 Prune done"
    summary = (
        f"{head} (job `{job.id}`){in_account(job.account)}: {len(ok)} AMIs deregistered, {len(bad)} failed, "
        f"{len(skipped)} skipped; {deleted} snapshots deleted, {kept} kept (used by another AMI), "
        f"{snap_failed} failed"
    )

    def with_snapshots(ami: str) -> str:
        ids = snapshots_of.get(ami, [])
        return "".join(f"; snapshot `{s}` {snaps.get(s, 'not deleted')}" for s in ids)

    lines = [f"✅ `{a}` {done[a]}{with_snapshots(a)}" for a in ok]
    lines += [f"⚠️ `{a}` {done[a]}" for a in bad]
    lines += [f"ℹ️ `{a}` skipped: {why}" for a, why in sorted(skipped.items())]
    shown = "\n".join(lines[:SHOWN])
    more = f"\n… and {len(lines) - SHOWN} more in the thread" if len(lines) > SHOWN else ""
    return f"{summary}\n{shown}{more}" if lines else summary, lines


def next_run(crontab: str | None, now: datetime) -> datetime | None:
    """The first fire time of `crontab` (UTC) at or after `now`; None when there is no schedule."""
    if not crontab:
        return None
    return cron_trigger(crontab).get_next_fire_time(None, now)


def schedule_text(
    crontab: str | None, notice: timedelta, now: datetime, policy: prune.Policy, *, channel: str | None
) -> str:
    """`/ami prune schedule` (pure). The schedule runs only with a channel to post the plan in."""
    rules = (
        f"Policy: retention {prune.format_duration(policy.retention)}, keep last {policy.keep_last} "
        f"per family, protect tag `{policy.protect_tag}`."
    )
    nxt = next_run(crontab, now)
    if nxt is None:
        return (
            "🗓️ Scheduled prune is *off* (set AMIBOT_PRUNE_SCHEDULE to a cron string such as "
            f"`0 6 * * 1`). {rules}"
        )
    if not channel:
        return (
            f"🗓️ Scheduled prune `{crontab}` is *off*: no channel to post the plan in "
            f"(set AMIBOT_APPROVAL_CHANNEL or AMIBOT_NOTIFY_CHANNEL). {rules}"
        )
    return (
        f"🗓️ Scheduled prune: `{crontab}` (UTC). Next run: {when(nxt.timestamp())}; "
        f"the plan is posted for approval in <#{channel}>. "
        f"A notice with Keep buttons goes out {prune.format_duration(notice)} before. {rules}"
    )
