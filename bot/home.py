"""The App Home tab: the viewer's jobs in flight, every pending approval (the viewer's own marked)
and the viewer's recent completions, with a Refresh button. Built from Redis only: opening the tab
never calls AWS, so it is as cheap as `/ami status`."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from bot import blocks as bk
from bot import notices
from bot.approvals import Approval
from bot.ids import ActionId
from bot.models import Job
from bot.status import approval_line
from bot.store.approvals import ApprovalStore
from bot.store.jobs import JobStore

SHOW_AT_MOST = 20
RECENT_SHOWN = 10
RECENT_SCANNED = 200  # the most recently finished jobs of everyone, searched for the viewer's


def _lines(lines: Sequence[str], limit: int = SHOW_AT_MOST) -> str:
    shown = list(lines[:limit])
    if len(lines) > limit:
        shown.append(f"… and {len(lines) - limit} more (`/ami status`)")
    return "\n".join(shown) if shown else "_none_"


def home_view(
    user: str, active: Sequence[Job], pending: Sequence[Approval], recent: Sequence[Job], now: float
) -> dict[str, Any]:
    """The home tab of `user` (pure)."""
    approvals = [approval_line(a) + (" — *yours*" if a.requester == user else "") for a in pending]
    blocks = [
        bk.header("amibot"),
        bk.actions(bk.button("Refresh", ActionId.HOME_REFRESH, "refresh"), block_id="home_actions"),
        bk.context(f"Updated {notices.when(now)}"),
        bk.section("*Your jobs in flight*\n" + _lines([notices.job_line(j, now) for j in active])),
        bk.divider(),
        bk.section("*Pending approvals*\n" + _lines(approvals)),
        bk.divider(),
        bk.section(
            "*Your recent completions*\n" + _lines([notices.job_line(j, now) for j in recent], RECENT_SHOWN)
        ),
        bk.context("`/ami status` shows every job in flight; `/ami help` lists the commands."),
    ]
    return {"type": "home", "blocks": blocks}


def unavailable_view(text: str) -> dict[str, Any]:
    """What the tab shows when its content cannot be read (e.g. the state store is down)."""
    return {
        "type": "home",
        "blocks": [
            bk.header("amibot"),
            bk.actions(bk.button("Refresh", ActionId.HOME_REFRESH, "refresh"), block_id="home_actions"),
            bk.section(text),
        ],
    }


class HomeService:
    def __init__(
        self, jobs: JobStore, approvals: ApprovalStore, *, clock: Callable[[], float] = time.time
    ) -> None:
        self._jobs = jobs
        self._approvals = approvals
        self._clock = clock

    def view(self, user: str) -> dict[str, Any]:
        active = self._jobs.active(SHOW_AT_MOST, user=user)
        pending = sorted(self._approvals.pending(), key=lambda a: a.created_at)
        recent = [job for job in self._jobs.recent(RECENT_SCANNED) if job.requester == user]
        recent.sort(key=lambda job: job.finished_at or job.updated_at, reverse=True)
        return home_view(user, active, pending, recent[:RECENT_SHOWN], self._clock())
