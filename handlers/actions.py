"""Buttons: Approve, Reject (asks for a reason in a modal) and Cancel on approval messages.

Only the button's `value` (the approval id) and the clicking user are taken from the payload.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from slack_bolt import Ack, App, Respond
from slack_sdk import WebClient

from bot.approvals import Decision
from bot.context import Caller, Reply
from bot.ids import ActionId
from handlers.replies import answer

if TYPE_CHECKING:
    from bot.app import Services


def clicker(body: dict[str, Any]) -> Caller:
    user = body.get("user") or {}
    team = body.get("team") or {}
    channel = body.get("channel") or {}
    container = body.get("container") or {}
    return Caller(
        user=str(user.get("id") or ""),
        channel=str(channel.get("id") or container.get("channel_id") or ""),
        team=str(team.get("id") or user.get("team_id") or ""),
        response_url=str(body.get("response_url") or ""),
        trigger_id=str(body.get("trigger_id") or ""),
    )


def value_of(body: dict[str, Any]) -> str:
    actions = body.get("actions") or [{}]
    return str((actions[0] or {}).get("value") or "")


def tell_failure(respond: Respond, reply: Reply | None) -> None:
    if reply is not None and reply.text:
        respond(text=reply.text, response_type="ephemeral", replace_original=False)


def register(app: App, services: Services) -> None:
    approving = services.approving

    def decide(decision: Decision) -> Any:
        def handler(ack: Ack, body: dict[str, Any], respond: Respond) -> None:
            ack()
            caller = clicker(body)

            def click() -> None:
                approving.click(decision, value_of(body), caller)

            tell_failure(respond, answer(click))

        handler.__name__ = f"on_{decision}"
        return handler

    app.action(ActionId.APPROVE)(decide(Decision.APPROVE))
    app.action(ActionId.CANCEL)(decide(Decision.CANCEL))

    @app.action(ActionId.REJECT)
    def on_reject(ack: Ack, body: dict[str, Any], respond: Respond, client: WebClient) -> None:
        ack()
        caller = clicker(body)

        def open_modal() -> Reply | None:
            view = approving.reject_view(value_of(body), caller)
            if view is not None:
                client.views_open(trigger_id=caller.trigger_id, view=view)
            return None

        tell_failure(respond, answer(open_modal))

    @app.action(ActionId.KEEP)
    def on_keep(ack: Ack, body: dict[str, Any], respond: Respond) -> None:
        ack()
        caller = clicker(body)

        def keep() -> None:
            services.keeping.keep(value_of(body), caller)

        tell_failure(respond, answer(keep))
