"""The approval state machine (pure): at most one terminal transition, only allowed users."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.approvals import (
    Approval,
    ApprovalState,
    Decision,
    Roles,
    decide,
    expire,
    reminded,
    reminder_due,
)

T0 = 1_800_000_000.0
TTL = 24 * 3600.0
USERS = {
    "UREQ": Roles(approver=False, admin=False),
    "UAPP": Roles(approver=True, admin=False),
    "UAPP2": Roles(approver=True, admin=False),
    "UADMIN": Roles(approver=True, admin=True),
    "UOUT": Roles(approver=False, admin=False),
}


def pending(**changes: object) -> Approval:
    base = Approval(
        id="a-19bd02",
        kind="deregister",
        requester="UREQ",
        channel="CASK",
        created_at=T0,
        expires_at=T0 + TTL,
        subject={"image_id": "ami-0123456789abcdef0"},
        region="us-east-1",
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def test_an_approver_approves() -> None:
    out = decide(pending(), Decision.APPROVE, "UAPP", USERS["UAPP"], T0 + 60)
    assert out.refusal is None and out.approval is not None
    assert out.approval.state is ApprovalState.APPROVED
    assert out.approval.decided_by == "UAPP" and out.approval.decided_at == T0 + 60


def test_the_requester_cannot_approve_their_own_request() -> None:
    requester_is_approver = Roles(approver=True, admin=False)
    out = decide(pending(requester="UAPP"), Decision.APPROVE, "UAPP", requester_is_approver, T0)
    assert out.approval is None and "someone else" in (out.refusal or "")


def test_self_approval_when_allowed() -> None:
    roles = Roles(approver=True, admin=False, allow_self_approval=True)
    out = decide(pending(requester="UAPP"), Decision.APPROVE, "UAPP", roles, T0)
    assert out.approval is not None and out.approval.state is ApprovalState.APPROVED


def test_outsiders_can_neither_approve_nor_reject() -> None:
    for decision in (Decision.APPROVE, Decision.REJECT):
        out = decide(pending(), decision, "UOUT", USERS["UOUT"], T0)
        assert out.approval is None and "not an approver" in (out.refusal or "")


def test_only_the_requester_or_an_admin_cancels() -> None:
    assert decide(pending(), Decision.CANCEL, "UAPP", USERS["UAPP"], T0).approval is None
    mine = decide(pending(), Decision.CANCEL, "UREQ", USERS["UREQ"], T0).approval
    assert mine is not None and mine.state is ApprovalState.CANCELLED
    admin = decide(pending(), Decision.CANCEL, "UADMIN", USERS["UADMIN"], T0).approval
    assert admin is not None and admin.state is ApprovalState.CANCELLED


def test_a_click_after_expiry_expires_it_and_does_nothing_else() -> None:
    out = decide(pending(), Decision.APPROVE, "UAPP", USERS["UAPP"], T0 + TTL)
    assert out.approval is not None and out.approval.state is ApprovalState.EXPIRED
    assert out.approval.decided_by is None and "expired" in (out.refusal or "")


def test_expire_and_reminders() -> None:
    assert expire(pending(), T0 + TTL - 1) is None
    gone = expire(pending(), T0 + TTL)
    assert gone is not None and gone.state is ApprovalState.EXPIRED
    assert not reminder_due(pending(), T0 + 3599, 3600)
    assert reminder_due(pending(), T0 + 3600, 3600)
    once = reminded(pending(), T0 + 3600)
    assert not reminder_due(once, T0 + 7199, 3600) and reminder_due(once, T0 + 7200, 3600)
    assert not reminder_due(pending(), T0 + TTL, 3600)  # expired: no reminder


clicks = st.lists(
    st.tuples(st.sampled_from(sorted(USERS)), st.sampled_from(list(Decision)), st.floats(0, 2 * TTL)),
    max_size=12,
)


@settings(max_examples=400, deadline=None)
@given(clicks)
def test_any_sequence_of_clicks_makes_at_most_one_terminal_transition(sequence: list) -> None:  # type: ignore[type-arg]
    approval = pending()
    transitions = 0
    for user, decision, offset in sorted(sequence, key=lambda c: c[2]):
        now = T0 + offset
        before = approval
        out = decide(approval, decision, user, USERS[user], now)
        if out.approval is None:
            assert out.refusal, "a click that changes nothing must say why"
            continue
        approval = out.approval
        assert before.state is ApprovalState.PENDING, "only a pending approval can change"
        transitions += 1
        if approval.state is ApprovalState.APPROVED:
            assert user != "UREQ" and USERS[user].approver
            assert now < before.expires_at
        if approval.state is ApprovalState.REJECTED:
            assert USERS[user].approver
        if approval.state is ApprovalState.CANCELLED:
            assert user == "UREQ" or USERS[user].admin
        if approval.state is ApprovalState.EXPIRED:
            assert now >= before.expires_at
    assert transitions <= 1
    assert Approval.from_dict(approval.to_dict()) == approval
