"""The create form's instance picker: its options (block_suggestion) and its selection.

Slack requires the options in the response to this request, within 3 seconds, so this is the one
handler that waits on AWS before acking; the service bounds that wait and never raises (any
problem answers an empty list). Picking an instance prefills the default AMI name (views.update;
no AWS call: the option carries the Name tag).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from slack_bolt import Ack, App
from slack_sdk import WebClient
from slack_sdk.errors import SlackClientError

from bot.create_form import picker_region
from bot.ids import OptionsId

if TYPE_CHECKING:
    from bot.app import Services

log = logging.getLogger(__name__)


def register(app: App, services: Services) -> None:
    @app.options(OptionsId.CREATE_INSTANCE)
    def on_instance_options(ack: Ack, body: dict[str, Any]) -> None:
        view = body.get("view") if isinstance(body.get("view"), dict) else {}
        query = body.get("value")
        try:
            options = services.create_form.instance_options(
                query if isinstance(query, str) else "",
                picker_region(view or {}),
                str((view or {}).get("private_metadata") or ""),
            )
        except Exception:  # belt and braces: Slack must get a list, whatever happened
            options = []
        ack(options=options)

    @app.action(OptionsId.CREATE_INSTANCE)
    def on_instance_picked(ack: Ack, body: dict[str, Any], client: WebClient) -> None:
        ack()
        view = body.get("view") if isinstance(body.get("view"), dict) else None
        actions = body.get("actions") if isinstance(body.get("actions"), list) else []
        picked = (actions[0].get("selected_option") or {}) if actions and isinstance(actions[0], dict) else {}
        value = picked.get("value") if isinstance(picked, dict) else None
        if view is None or not isinstance(value, str) or not view.get("id"):
            return
        update = services.create_form.prefill(view, value)
        if update is None:
            return
        try:  # the hash: a form the person changed meanwhile is not overwritten
            client.views_update(view_id=str(view["id"]), hash=view.get("hash"), view=update)
        except SlackClientError as exc:
            log.info("create form not prefilled", extra={"error": type(exc).__name__})
