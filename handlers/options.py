"""External select options (block_suggestion): the create form's instance picker.

Slack requires the options in the response to this request, within 3 seconds, so this is the one
handler that waits on AWS before acking; the service bounds that wait and never raises (any
problem answers an empty list).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from slack_bolt import Ack, App

from bot.create_form import picker_region
from bot.ids import OptionsId

if TYPE_CHECKING:
    from bot.app import Services


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
