"""Slash command text → the service that answers it. The one entry point of `/ami`."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from bot.commands import USAGE, Command, GrammarContext, Help, help_text, parse
from bot.context import Caller, Reply
from bot.errors import UserError

Route = Callable[[Any, Caller], Reply]


def help_reply(cmd: Help, caller: Caller) -> Reply:
    return Reply(help_text(cmd.topic))


class CommandService:
    def __init__(self, grammar: GrammarContext, routes: Mapping[type, Route]) -> None:
        self._grammar = grammar
        self._routes: dict[type, Route] = {Help: help_reply, **routes}

    def handle(self, text: str, caller: Caller) -> Reply:
        command: Command = parse(text, self._grammar)
        route = self._routes.get(type(command))
        if route is None:
            sub = getattr(command, "SUBCOMMAND", "?")
            raise UserError(f"`/ami {sub}` is not available in this version of amibot.", USAGE.get(sub))
        return route(command, caller)
