"""What amibot tells people about jobs: pure builders of replies and outbox items.

Notice ids are deterministic (job, region, state, destination), so a notice can be
enqueued twice and still be delivered once.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot import blocks as bk
from bot.context import Reply
from bot.durations import format_duration
from bot.messages import Delivery, OutboxItem
from bot.models import Job, JobKind, JobState, Target, TargetState

ICONS = {
    TargetState.AVAILABLE: "✅",
    TargetState.FAILED: "❌",
    TargetState.TIMED_OUT: "⏳",
    TargetState.PENDING: "🔄",
    TargetState.REQUESTED: "🕓",
    TargetState.QUEUED: "🕓",
}


def elapsed(start: float, end: float) -> str:
    return format_duration(timedelta(seconds=max(0, round(end - start))))


def when(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M UTC")


def account_note(job: Job) -> str:
    return in_account(job.account)


def in_account(account: str | None) -> str:
    """The account suffix of a message: " · account prod", or "" for amibot's own account."""
    return f" · account {account}" if account else ""


def image_label(job: Job, target: Target) -> str:
    name = job.params.get("name") or ""
    ident = target.image_id or "(no image yet)"
    return f"`{ident}` ({name})" if name else f"`{ident}`"


def image_notice_text(job: Job, target: Target) -> str:
    end = target.finished_at or job.updated_at or job.created_at
    took = elapsed(job.created_at, end)
    label = image_label(job, target)
    verb = {
        TargetState.AVAILABLE: f"is available in {target.region} after {took}",
        TargetState.FAILED: f"failed in {target.region} after {took}: {target.error or 'no reason given'}",
        TargetState.TIMED_OUT: (
            f"is still pending in {target.region} after {took}; amibot stopped watching it. "
            f"`/ami status {job.id}` tracks it again"
        ),
    }.get(target.state, f"is {target.state} in {target.region}")
    icon = ICONS.get(target.state, "")
    if job.kind is JobKind.COPY:
        what = f"Copy {label} of" if target.image_id else "Copy of"
        return (
            f"{icon} {what} {copy_source(job)} {verb} — requested by <@{job.requester}> "
            f"(job {job.id}){account_note(job)}"
        )
    return f"{icon} AMI {label} {verb} — requested by <@{job.requester}> (job {job.id}){account_note(job)}"


def copy_source(job: Job) -> str:
    """The image a copy job copies: "`ami-…` from us-east-1"."""
    return f"`{job.params.get('image_id')}` from {job.params.get('source_region') or job.region}"


def target_line(job: Job, target: Target) -> str:
    """One target of a job: "us-east-1 → eu-west-1 `ami-…` pending" for copies."""
    where = target.region
    if job.kind is JobKind.COPY:
        where = f"{job.params.get('source_region') or job.region} → {target.region}"
    return f"{ICONS.get(target.state, '')} {where} `{target.image_id or '…'}` {target.state}"


def image_notices(job: Job, target: Target, notify_channel: str | None) -> list[OutboxItem]:
    """One notice per destination for a target that reached a final (or "still pending") state."""
    text = image_notice_text(job, target)
    facts = [
        ("AMI", f"`{target.image_id}`" if target.image_id else "—"),
        ("Name", str(job.params.get("name") or "—")),
        ("Region", target.region),
        *([("Source", copy_source(job))] if job.kind is JobKind.COPY else []),
        ("State", str(target.state)),
        ("Elapsed", elapsed(job.created_at, target.finished_at or job.updated_at or job.created_at)),
        ("Requested by", f"<@{job.requester}>"),
    ]
    body = [
        bk.section(text),
        bk.fields(*facts),
        bk.context(f"job {job.id} · {job.kind}{account_note(job)}"),
    ]
    base = f"notice:{job.id}:{target.region}:{target.state}"
    if target.state is TargetState.TIMED_OUT:
        base += f":{int(job.deadline)}"
    dests = [job.channel] + ([notify_channel] if notify_channel and notify_channel != job.channel else [])
    return [
        OutboxItem(
            id=f"{base}@{dest}",
            kind=Delivery.POST,
            text=text,
            blocks=body,
            channel=dest,
            fallback_user=job.requester if dest == job.channel else None,
        )
        for dest in dests
    ]


def respond(job: Job, text: str, *, key: str) -> OutboxItem:
    """An ephemeral follow-up to the person who asked (DM if the response URL no longer works)."""
    return OutboxItem(
        id=f"respond:{job.id}:{key}",
        kind=Delivery.RESPOND,
        text=text,
        response_url=job.response_url,
        fallback_user=job.requester,
    )


def create_accepted(job: Job) -> Reply:
    instance = job.params["instance_id"]
    reboot = "with a reboot" if job.params.get("reboot") else "without reboot"
    return Reply(
        f"🕓 Job `{job.id}`: creating an image of `{instance}` in {job.region} ({reboot})"
        f"{account_note(job)}. I'll post in this channel when it is ready."
    )


def create_started(job: Job, target: Target) -> str:
    return (
        f"🔄 Job `{job.id}`: CreateImage started — `{target.image_id}` ({job.params.get('name')}) "
        f"in {target.region}{account_note(job)}. Tracking it until it is available."
    )


def job_failed_to_start(job: Job, error: str) -> str:
    return f"❌ Job `{job.id}` failed{account_note(job)}: {error}"


def job_line(job: Job, now: float) -> str:
    parts = []
    for target in job.targets:
        parts.append(target_line(job, target))
    where = "; ".join(parts) if parts else str(job.state)
    what = job.params.get("name") or job.params.get("instance_id") or job.params.get("image_id") or ""
    age = elapsed(job.created_at, job.finished_at or now)
    return f"`{job.id}` {job.kind} {what} — {where} — {age} — <@{job.requester}>{account_note(job)}"


def job_detail(job: Job, now: float) -> Reply:
    lines = [
        f"*Job `{job.id}`* — {job.kind}, {job.state}{account_note(job)}",
        f"Requested by <@{job.requester}> at {when(job.created_at)}; "
        f"elapsed {elapsed(job.created_at, job.finished_at or now)}",
    ]
    for key in ("instance_id", "image_id", "name", "description"):
        if job.params.get(key):
            lines.append(f"{key.replace('_', ' ')}: `{job.params[key]}`")
    for target in job.targets:
        line = target_line(job, target)
        if target.error:
            line += f" — {target.error}"
        lines.append(line)
    if job.error:
        lines.append(f"error: {job.error}")
    if job.state is JobState.TRACKING:
        lines.append(f"tracking until {when(job.deadline)}")
    text = "\n".join(lines)
    return Reply(text, blocks=[bk.section(text)])


def retracked(job: Job) -> Reply:
    return Reply(
        f"🔄 Job `{job.id}`{account_note(job)} is tracked again until {when(job.deadline)}; "
        "I'll post when its images are ready."
    )


def copy_summary_text(job: Job) -> str:
    """The final word on a copy job: each destination region's outcome (pure)."""
    available = sum(1 for t in job.targets if t.state is TargetState.AVAILABLE)
    name = job.params.get("name")
    icon = {JobState.SUCCEEDED: "✅", JobState.FAILED: "❌", JobState.TIMED_OUT: "⏳"}.get(job.state, "")
    head = (
        f"{icon} Copy of {copy_source(job)}{f' ({name})' if name else ''} finished: "
        f"{available} of {len(job.targets)} regions available — requested by <@{job.requester}> "
        f"(job {job.id}){account_note(job)}"
    )
    lines = []
    for target in job.targets:
        line = f"• {target_line(job, target)}"
        if target.error:
            line += f" — {target.error}"
        lines.append(line)
    return "\n".join([head, *lines])


def copy_summary(job: Job, notify_channel: str | None) -> list[OutboxItem]:
    """The summary of a finished copy job, once per destination (also when re-tracked and finished
    again: the deadline is part of the id)."""
    text = copy_summary_text(job)
    dests = [job.channel] + ([notify_channel] if notify_channel and notify_channel != job.channel else [])
    return [
        OutboxItem(
            id=f"summary:{job.id}:{int(job.deadline)}@{dest}",
            kind=Delivery.POST,
            text=text,
            blocks=[bk.section(text), bk.context(f"job {job.id} · {job.kind}{account_note(job)}")],
            channel=dest,
            fallback_user=job.requester if dest == job.channel else None,
        )
        for dest in dests
    ]
