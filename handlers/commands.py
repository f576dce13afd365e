"""`/ami …`: ack with the answer of the command service (which never waits on AWS)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from slack_bolt import Ack, App

from bot.context import Caller
from bot.ids import COMMAND
from handlers.replies import answer

if TYPE_CHECKING:
    from bot.app import Services


def caller_of(command: dict[str, Any]) -> Caller:
    return Caller(
        user=str(command.get("user_id") or ""),
        channel=str(command.get("channel_id") or ""),
        team=str(command.get("team_id") or ""),
        response_url=str(command.get("response_url") or ""),
        trigger_id=str(command.get("trigger_id") or ""),
    )


def register(app: App, services: Services) -> None:
    @app.command(COMMAND)
    def on_ami(ack: Ack, command: dict[str, Any]) -> None:
        caller = caller_of(command)
        text = command.get("text")
        reply = answer(lambda: services.commands.handle(text if isinstance(text, str) else "", caller))
        ack(**reply.as_ack()) if reply is not None else ack()
