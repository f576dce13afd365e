"""Approvals: the four-eyes state machine for destructive requests (pure).

pending → approved | rejected | expired | cancelled, exactly once. Who may do what:
- approve: an approver or admin who is not the requester (unless self-approval is allowed);
- reject: an approver or admin (the requester cancels instead);
- cancel: the requester, or an admin.
A click on a decided or expired approval changes nothing and says why.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from enum import StrEnum
from typing import Any


class ApprovalState(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    EXPIRED = "expired"
    CANCELLED = "cancelled"


class Decision(StrEnum):
    APPROVE = "approve"
    REJECT = "reject"
    CANCEL = "cancel"


DECIDED_BY = {
    Decision.APPROVE: ApprovalState.APPROVED,
    Decision.REJECT: ApprovalState.REJECTED,
    Decision.CANCEL: ApprovalState.CANCELLED,
}


@dataclass(frozen=True)
class Approval:
    id: str
    kind: str  # "deregister" | "prune"
    requester: str
    channel: str  # where it was asked
    created_at: float
    expires_at: float
    subject: dict[str, Any]  # what would be done (AMI, region, snapshots, plan…)
    state: ApprovalState = ApprovalState.PENDING
    team: str = ""
    account: str | None = None
    region: str = ""
    reason: str | None = None  # the requester's
    response_url: str = ""
    message_channel: str | None = None  # where the approval message landed
    message_ts: str | None = None
    decided_by: str | None = None
    decided_at: float | None = None
    decision_note: str | None = None  # e.g. the rejection reason
    job_id: str | None = None  # the execution job, once approved
    last_reminded_at: float | None = None
    reminders: int = 0

    @property
    def pending(self) -> bool:
        return self.state is ApprovalState.PENDING

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Approval:
        return cls(**{**data, "state": ApprovalState(data["state"])})


@dataclass(frozen=True)
class Roles:
    """Who the actor is, already resolved (user groups expanded)."""

    approver: bool
    admin: bool
    allow_self_approval: bool = False


@dataclass(frozen=True)
class Outcome:
    """A decision's result: the new approval (None: unchanged) and, if refused, why."""

    approval: Approval | None
    refusal: str | None = None


def decide(
    approval: Approval, decision: Decision, actor: str, roles: Roles, now: float, note: str | None = None
) -> Outcome:
    if approval.state is ApprovalState.PENDING and now >= approval.expires_at:
        return Outcome(expire(approval, now), refusal=f"approval {approval.id} has expired; nothing was done")
    if approval.state is not ApprovalState.PENDING:
        return Outcome(None, refusal=already(approval))
    refusal = _refuse(approval, decision, actor, roles)
    if refusal:
        return Outcome(None, refusal=refusal)
    return Outcome(
        replace(approval, state=DECIDED_BY[decision], decided_by=actor, decided_at=now, decision_note=note)
    )


def _refuse(approval: Approval, decision: Decision, actor: str, roles: Roles) -> str | None:
    is_requester = actor == approval.requester
    if decision is Decision.CANCEL:
        if is_requester or roles.admin:
            return None
        return f"only <@{approval.requester}> (who asked) or an admin can cancel this request"
    if not (roles.approver or roles.admin):
        return "you are not an approver for amibot (AMIBOT_APPROVERS); nothing was done"
    if decision is Decision.APPROVE and is_requester and not roles.allow_self_approval:
        return "you asked for this, so someone else must approve it (four eyes); nothing was done"
    return None


def expire(approval: Approval, now: float) -> Approval | None:
    if approval.state is not ApprovalState.PENDING or now < approval.expires_at:
        return None
    return replace(approval, state=ApprovalState.EXPIRED, decided_at=now)


def reminder_due(approval: Approval, now: float, interval: float) -> bool:
    if approval.state is not ApprovalState.PENDING or now >= approval.expires_at:
        return False
    since = approval.last_reminded_at or approval.created_at
    return now - since >= interval


def reminded(approval: Approval, now: float) -> Approval:
    return replace(approval, last_reminded_at=now, reminders=approval.reminders + 1)


def already(approval: Approval) -> str:
    if approval.state is ApprovalState.EXPIRED:
        return f"approval {approval.id} has expired; nothing was done"
    who = f" by <@{approval.decided_by}>" if approval.decided_by else ""
    return f"approval {approval.id} was already {approval.state}{who}; nothing more was done"
