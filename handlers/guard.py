"""The global middleware: the workspace (AMIBOT_TEAM_ID) and channel (AMIBOT_ALLOWED_CHANNELS) checks."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from slack_bolt import App, BoltContext, BoltResponse

if TYPE_CHECKING:
    from bot.app import Services


def register(app: App, services: Services) -> None:
    access = services.access

    @app.middleware
    def check_access(
        body: dict[str, Any], context: BoltContext, next: Callable[[], None]
    ) -> BoltResponse | None:
        is_command = "command" in body
        refusal = access.refuse_team(context.team_id or _team_of(body))
        if refusal is None and is_command:
            refusal = access.refuse_channel(context.channel_id)
        if refusal is None:
            next()
            return None
        if is_command:
            payload = {"response_type": "ephemeral", "text": f"⚠️ {refusal}"}
            return BoltResponse(
                status=200, body=json.dumps(payload), headers={"content-type": "application/json"}
            )
        return BoltResponse(status=403, body=refusal)


def _team_of(body: dict[str, Any]) -> str | None:
    team = body.get("team_id") or body.get("team")
    if isinstance(team, dict):
        team = team.get("id")
    return str(team) if team else None
