"""Deciding approvals: button clicks, the reject reason, expiry and reminders, and keeping the
approval message up to date. Each decision is one atomic Redis transaction (the approval, its
execution job, the message update and the audit entry together), so it happens once.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from bot import approval_messages as am
from bot.approvals import Approval, ApprovalState, Decision, already, decide, expire, reminded, reminder_due
from bot.context import Caller
from bot.errors import UserError
from bot.ids import APPROVAL_ID, new_token
from bot.messages import Delivery, OutboxItem
from bot.models import Job
from bot.roles import RoleDirectory
from bot.store.approvals import ApprovalStore
from bot.store.effects import AuditEntry, Effects
from bot.store.outbox import OutboxStore
from bot.tasks import is_person

# kind -> how to summarise it, and the job an approval of that kind starts
Summaries = Mapping[str, am.Summary]
Executors = Mapping[str, Callable[[Approval, float], Job]]


@dataclass(frozen=True)
class ApprovalSettings:
    reminder_interval: float


class Approving:
    def __init__(
        self,
        approvals: ApprovalStore,
        outbox: OutboxStore,
        roles: RoleDirectory,
        summaries: Summaries,
        executors: Executors,
        settings: ApprovalSettings,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._approvals = approvals
        self._outbox = outbox
        self._roles = roles
        self._summaries = summaries
        self._executors = executors
        self._settings = settings
        self._clock = clock

    def _summary(self, approval: Approval) -> am.Summary:
        return self._summaries[approval.kind]

    # clicks (ack path: Redis, and Slack only to resolve user groups) ------------------------------

    def click(self, decision: Decision, approval_id: str, caller: Caller, note: str | None = None) -> None:
        """Decide, or tell the clicker (ephemerally) why nothing happened."""
        refusal = self._decide(decision, approval_id, caller, note)
        if refusal is not None:
            self.tell(caller, f"⚠️ {refusal}")

    def reject_view(self, approval_id: str, caller: Caller) -> dict[str, Any] | None:
        """The reject-reason modal, or None (and an ephemeral refusal) if the click cannot count."""
        approval = self._get(approval_id)
        roles = self._roles.roles(caller.user)
        if approval.pending and self._clock() >= approval.expires_at:
            self.tell(caller, f"⚠️ approval {approval.id} has expired; nothing was done")
            return None
        if not approval.pending:
            self.tell(caller, f"⚠️ {already(approval)}")
            return None
        if not (roles.approver or roles.admin):
            self.tell(caller, "⚠️ you are not an approver for amibot (AMIBOT_APPROVERS); nothing was done")
            return None
        return am.reject_modal(approval)

    def tell(self, caller: Caller, text: str) -> None:
        """An ephemeral line to the person who clicked (via the action's response_url, else a DM)."""
        self._outbox.enqueue(
            OutboxItem(
                id=f"click:{new_token()}",
                kind=Delivery.RESPOND,
                text=text,
                response_url=caller.response_url or None,
                fallback_user=caller.user,
            )
        )

    def _get(self, approval_id: str) -> Approval:
        if not APPROVAL_ID.match(approval_id or ""):
            raise UserError("that button does not name an approval")
        approval = self._approvals.get(approval_id)
        if approval is None:
            raise UserError(f"no approval {approval_id} (decided approvals are kept for 30 days)")
        return approval

    def _decide(self, decision: Decision, approval_id: str, caller: Caller, note: str | None) -> str | None:
        self._get(approval_id)
        roles = self._roles.roles(caller.user)
        now = self._clock()
        refusals: list[str] = []

        def change(approval: Approval) -> tuple[Approval, Effects] | None:
            refusals.clear()
            outcome = decide(approval, decision, caller.user, roles, now, note)
            if outcome.refusal:
                refusals.append(outcome.refusal)
            if outcome.approval is None:
                return None
            return self._decided(outcome.approval, now)

        self._approvals.update(approval_id, change)
        return refusals[0] if refusals else None

    def _decided(self, approval: Approval, now: float) -> tuple[Approval, Effects]:
        effects = Effects(
            audit=[
                AuditEntry(
                    actor=approval.decided_by or "amibot",
                    action=f"approval.{approval.state}",
                    target=approval.id,
                    detail=f"{approval.kind} {approval.subject.get('image_id', '')}".strip(),
                    result=approval.decision_note or "ok",
                    account=approval.account or "",
                    region=approval.region,
                )
            ]
        )
        if approval.state is ApprovalState.APPROVED:
            job = self._executors[approval.kind](approval, now)
            approval = replace(approval, job_id=job.id)
            effects += Effects(jobs=[job], work=[(f"job:{job.id}", now)])
        else:
            effects += Effects(notices=[self._requester_notice(approval)])
        update = am.update_decided(approval, self._summary(approval))
        if update is not None:
            effects += Effects(notices=[update])
        return approval, effects

    def _requester_notice(self, approval: Approval) -> OutboxItem:
        whose = f"<@{approval.requester}> your" if is_person(approval.requester) else "The scheduled"
        what = f"{whose} {approval.kind} request `{approval.id}`"
        if approval.state is ApprovalState.EXPIRED:
            text = f"⌛ {what} expired without a decision; nothing was done."
        else:
            note = f": {approval.decision_note}" if approval.decision_note else ""
            text = f"{what} was {approval.state} by <@{approval.decided_by}>{note}."
        return am.to_requester(approval, text, f"outcome:{approval.state}")

    # the approval message landed (outbox hook) -------------------------------------------------------

    def message_landed(self, approval_id: str, channel: str, ts: str) -> None:
        def change(approval: Approval) -> tuple[Approval, Effects] | None:
            if approval.message_ts:
                return None
            placed = replace(approval, message_channel=channel, message_ts=ts)
            update = None if placed.pending else am.update_decided(placed, self._summary(placed))
            return placed, Effects(notices=[update] if update else [])

        self._approvals.update(approval_id, change)

    # expiry and reminders (scheduled, under a lease) -------------------------------------------------

    def sweep(self) -> int:
        now = self._clock()
        changed = 0
        for approval in self._approvals.pending():
            if now >= approval.expires_at:
                changed += bool(self._approvals.update(approval.id, lambda a: self._expired(a, now)))
            elif reminder_due(approval, now, self._settings.reminder_interval):
                changed += bool(self._approvals.update(approval.id, lambda a: self._remind(a, now)))
        return changed

    def _expired(self, approval: Approval, now: float) -> tuple[Approval, Effects] | None:
        gone = expire(approval, now)
        return self._decided(gone, now) if gone is not None else None

    def _remind(self, approval: Approval, now: float) -> tuple[Approval, Effects] | None:
        if not reminder_due(approval, now, self._settings.reminder_interval):
            return None
        item = am.reminder(approval, self._roles.approver_mentions())
        if item is None:
            return None  # the request message has not landed yet
        return reminded(approval, now), Effects(notices=[item])
