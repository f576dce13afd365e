"""Every Redis key amibot uses, built in one place: `<prefix><noun>:<id>`."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Keys:
    prefix: str = "amibot:"

    def _k(self, *parts: str) -> str:
        return self.prefix + ":".join(parts)

    # jobs
    def job(self, job_id: str) -> str:
        return self._k("job", job_id)

    @property
    def jobs_active(self) -> str:
        """Sorted set of the ids of unfinished jobs (queued, tracking, running) by creation time."""
        return self._k("jobs", "active")

    def user_jobs(self, user: str) -> str:
        """Sorted set of one requester's unfinished jobs by creation time (App Home)."""
        return self._k("jobs", "user", user)

    @property
    def jobs_tracking(self) -> str:
        """Set of job ids with images the tracker polls."""
        return self._k("jobs", "tracking")

    @property
    def jobs_recent(self) -> str:
        """Sorted set of finished job ids by finish time (trimmed)."""
        return self._k("jobs", "recent")

    @property
    def job_counts(self) -> str:
        """Hash "kind|state" -> count: current for unfinished states, cumulative for finished ones."""
        return self._k("jobs", "counts")

    # work queue: items due for a worker, scored by the time they are due
    @property
    def work_due(self) -> str:
        return self._k("work", "due")

    def task(self, task_id: str) -> str:
        return self._k("task", task_id)

    # leases
    def lease(self, name: str) -> str:
        return self._k("lease", name)

    def once(self, kind: str, ident: str) -> str:
        """Marks something that may happen once: a scheduler tick, a request signature."""
        return self._k("once", kind, ident)

    # outbox
    def outbox_item(self, item_id: str) -> str:
        return self._k("outbox", "item", item_id)

    def outbox_queue(self, dest: str) -> str:
        return self._k("outbox", "queue", dest)

    @property
    def outbox_dests(self) -> str:
        """Sorted set of destinations with queued items, scored by when to try next."""
        return self._k("outbox", "dests")

    # approvals
    def approval(self, approval_id: str) -> str:
        return self._k("approval", approval_id)

    @property
    def approvals_pending(self) -> str:
        """Sorted set of pending approval ids by expiry time."""
        return self._k("approvals", "pending")

    @property
    def approvals_recent(self) -> str:
        return self._k("approvals", "recent")

    def usergroup(self, group_id: str) -> str:
        return self._k("usergroup", group_id)

    def offer(self, token: str) -> str:
        """What a Keep button keeps (account, region, AMI)."""
        return self._k("offer", token)

    @property
    def wake(self) -> str:
        """Pub/sub channel: "work" or "outbox" became due (see bot.store.wakeups)."""
        return self._k("wake")

    # audit
    @property
    def audit(self) -> str:
        return self._k("audit")
