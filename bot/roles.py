"""Who is an approver or an admin: AMIBOT_APPROVERS / AMIBOT_ADMINS hold user ids (U…/W…) and
user group ids (S…); groups are resolved with usergroups.users.list and cached in Redis."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError

from bot.approvals import Roles
from bot.errors import UserError
from bot.store.groups import GroupCache

log = logging.getLogger(__name__)

FRESH_S = 300.0
REFRESH_S = 120.0  # the scheduled refresh keeps the cache fresh between clicks


class RoleDirectory:
    def __init__(
        self,
        approvers: Sequence[str],
        admins: Sequence[str],
        *,
        allow_self_approval: bool,
        cache: GroupCache,
        slack: WebClient,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._approvers = tuple(approvers)
        self._admins = tuple(admins)
        self._allow_self = allow_self_approval
        self._cache = cache
        self._slack = slack
        self._clock = clock

    def roles(self, user: str) -> Roles:
        admin = self._member(user, self._admins)
        return Roles(
            approver=admin or self._member(user, self._approvers),
            admin=admin,
            allow_self_approval=self._allow_self,
        )

    def is_admin(self, user: str) -> bool:
        return self._member(user, self._admins)

    def is_approver(self, user: str) -> bool:
        return self.roles(user).approver

    def approver_mentions(self) -> str:
        """How to ping the approvers in a message."""
        return " ".join(f"<!subteam^{p}>" if p.startswith("S") else f"<@{p}>" for p in self._approvers)

    def refresh(self) -> None:
        """Re-read every configured user group (scheduled), so clicks find a warm cache."""
        for group in {p for p in (*self._approvers, *self._admins) if p.startswith("S")}:
            try:
                self._group(group, force=True)
            except UserError as exc:
                log.warning("could not refresh a user group", extra={"group": group, "error": exc.message})

    def _member(self, user: str, principals: Sequence[str]) -> bool:
        if user in principals:
            return True
        return any(user in self._group(p) for p in principals if p.startswith("S"))

    def _group(self, group_id: str, *, force: bool = False) -> list[str]:
        cached = self._cache.get(group_id)
        now = self._clock()
        if cached is not None and now - cached[1] < FRESH_S and not force:
            return cached[0]
        try:
            response = self._slack.usergroups_users_list(usergroup=group_id)
            users: list[str] = response.get("users") or []
            members = [str(user) for user in users]
        except (SlackApiError, SlackClientError, OSError) as exc:
            if cached is not None:
                log.warning("user group lookup failed; using the cached members", extra={"group": group_id})
                return cached[0]
            why = exc.response.get("error") if isinstance(exc, SlackApiError) else type(exc).__name__
            raise UserError(
                f"could not look up the members of user group {group_id} in Slack ({why}); try again"
            ) from exc
        self._cache.put(group_id, members, now)
        return members
