"""The Slack edge: one module per kind of Slack input, each with `register(app, services)`.

Handlers ack, turn the payload into a typed request, call one service function and render
the answer. They never talk to AWS or Redis themselves.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from slack_bolt import App

from handlers import actions, commands, guard, home, options, views

if TYPE_CHECKING:
    from bot.app import Services


def register_all(app: App, services: Services) -> None:
    guard.register(app, services)
    commands.register(app, services)
    actions.register(app, services)
    views.register(app, services)
    options.register(app, services)
    home.register(app, services)
