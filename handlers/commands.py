"""`/ami …`: ack with the answer of the command service (which never waits on AWS). When the answer
is a form to open (`/ami create` alone), the modal is opened here with the command's trigger id."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from slack_bolt import Ack, App
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError

from bot.context import Caller, Reply
from bot.create_form import OPEN_VIEW
from bot.ids import COMMAND
from handlers.replies import answer

if TYPE_CHECKING:
    from bot.app import Services

log = logging.getLogger(__name__)


def caller_of(command: dict[str, Any]) -> Caller:
    return Caller(
        user=str(command.get("user_id") or ""),
        channel=str(command.get("channel_id") or ""),
        team=str(command.get("team_id") or ""),
        response_url=str(command.get("response_url") or ""),
        trigger_id=str(command.get("trigger_id") or ""),
    )


def open_view(client: WebClient, trigger_id: str, view: dict[str, Any]) -> Reply | None:
    """Open a modal a command asked for (`/ami create` alone); a readable line if Slack refuses."""
    try:
        client.views_open(trigger_id=trigger_id, view=view)
    except SlackClientError as exc:
        error = exc.response.get("error") if isinstance(exc, SlackApiError) else type(exc).__name__
        log.warning("could not open a modal", extra={"error": error})
        return Reply(
            f"⚠️ Slack did not open the form ({error}). "
            "Try again, or use `/ami create INSTANCE_ID [--name NAME] …`"
        )
    return None


def register(app: App, services: Services) -> None:
    @app.command(COMMAND)
    def on_ami(ack: Ack, command: dict[str, Any], client: WebClient) -> None:
        caller = caller_of(command)
        text = command.get("text")
        reply = answer(lambda: services.commands.handle(text if isinstance(text, str) else "", caller))
        if reply is not None and OPEN_VIEW in reply.extra:
            reply = open_view(client, caller.trigger_id, reply.extra[OPEN_VIEW])
        ack(**reply.as_ack()) if reply is not None else ack()
