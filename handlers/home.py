"""The App Home tab: published when a person opens it (`app_home_opened`) and on its Refresh button.
The view comes from Redis only; publishing it is one Slack call."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from slack_bolt import Ack, App
from slack_sdk import WebClient
from slack_sdk.errors import SlackClientError

from bot.home import unavailable_view
from bot.ids import ActionId, Event
from handlers.replies import answer

if TYPE_CHECKING:
    from bot.app import Services

log = logging.getLogger(__name__)


def register(app: App, services: Services) -> None:
    def publish(client: WebClient, user: str) -> None:
        if not user:
            return
        views: list[dict[str, Any]] = []

        def build() -> None:
            views.append(services.home.view(user))

        failure = answer(build)
        view = unavailable_view(failure.text) if failure is not None else views[0]
        try:
            client.views_publish(user_id=user, view=view)
        except SlackClientError as exc:
            log.warning("could not publish the home tab", extra={"error": str(exc)[:200]})

    @app.event(Event.APP_HOME_OPENED)
    def on_home_opened(event: dict[str, Any], client: WebClient) -> None:
        if event.get("tab", "home") != "home":
            return  # the Messages tab
        publish(client, str(event.get("user") or ""))

    @app.action(ActionId.HOME_REFRESH)
    def on_home_refresh(ack: Ack, body: dict[str, Any], client: WebClient) -> None:
        ack()
        publish(client, str((body.get("user") or {}).get("id") or ""))
