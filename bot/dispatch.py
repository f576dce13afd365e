"""Slash command text → the service that answers it. The one entry point of `/ami`.

Who may run what is checked here, before any service runs:
- `audit` (and, later, changing schedules): admins;
- `protect`, `unprotect`: approvers and admins;
- everything else: anyone in an allowed channel (approving is checked on the click).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from bot.commands import USAGE, Audit, Command, GrammarContext, Help, Protect, Unprotect, help_text, parse
from bot.context import Caller, Reply
from bot.errors import PermissionDenied, UserError
from bot.roles import RoleDirectory

Route = Callable[[Any, Caller], Reply]

ADMIN_ONLY: frozenset[type] = frozenset({Audit})
APPROVER_ONLY: frozenset[type] = frozenset({Protect, Unprotect})


def help_reply(cmd: Help, caller: Caller) -> Reply:
    return Reply(help_text(cmd.topic))


class CommandService:
    def __init__(self, grammar: GrammarContext, routes: Mapping[type, Route], roles: RoleDirectory) -> None:
        self._grammar = grammar
        self._routes: dict[type, Route] = {Help: help_reply, **routes}
        self._roles = roles

    def handle(self, text: str, caller: Caller) -> Reply:
        if not caller.user or not caller.channel:
            raise UserError("this request names no user or no channel, so amibot cannot act on it")
        command: Command = parse(text, self._grammar)
        sub = getattr(command, "SUBCOMMAND", "?")
        route = self._routes.get(type(command))
        if route is None:
            raise UserError(f"`/ami {sub}` is not available in this version of amibot.", USAGE.get(sub))
        kind = type(command)
        if kind in ADMIN_ONLY and not self._roles.is_admin(caller.user):
            raise PermissionDenied(f"`/ami {sub}` is for amibot admins (AMIBOT_ADMINS).")
        if kind in APPROVER_ONLY and not self._roles.is_approver(caller.user):
            raise PermissionDenied(
                f"`/ami {sub}` is for approvers and admins (AMIBOT_APPROVERS, AMIBOT_ADMINS)."
            )
        return route(command, caller)
