"""Modal submissions: the reason of a rejection; the create form (errors shown on its fields)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from slack_bolt import Ack, App

from bot.approval_messages import REASON_BLOCK
from bot.approvals import Decision
from bot.context import Caller
from bot.create_form import INSTANCE, read_form
from bot.ids import CallbackId
from handlers.replies import answer

if TYPE_CHECKING:
    from bot.app import Services


def submitter(body: dict[str, Any]) -> Caller:
    user = body.get("user") or {}
    team = body.get("team") or {}
    return Caller(user=str(user.get("id") or ""), channel="", team=str(team.get("id") or ""))


def field_value(view: dict[str, Any], block: str) -> str | None:
    value = ((view.get("state") or {}).get("values") or {}).get(block, {}).get(block, {}).get("value")
    return str(value).strip() or None if value else None


def register(app: App, services: Services) -> None:
    @app.view(CallbackId.REJECT_MODAL)
    def on_reject_reason(ack: Ack, body: dict[str, Any], view: dict[str, Any]) -> None:
        ack()
        caller = submitter(body)
        approval_id = str(view.get("private_metadata") or "")
        note = field_value(view, REASON_BLOCK)

        def reject() -> None:
            services.approving.click(Decision.REJECT, approval_id, caller, note)

        failure = answer(reject)
        if failure is not None:
            text = failure.text

            def tell() -> None:
                services.approving.tell(caller, text)

            answer(tell)

    @app.view(CallbackId.CREATE_MODAL)
    def on_create_form(ack: Ack, body: dict[str, Any], view: dict[str, Any]) -> None:
        caller = submitter(body)
        form = read_form(view)
        errors: dict[str, str] = {}

        def submit() -> None:
            errors.update(services.create_form.submit(form, caller))

        failure = answer(submit)
        if failure is not None:
            errors = {INSTANCE: failure.text}
        if errors:
            ack(response_action="errors", errors=errors)
        else:
            ack()  # closes the form; the answer comes through the command's response URL or a DM
