"""Who asked, from where: the part of a Slack payload the services need, and what they answer."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Caller:
    user: str
    channel: str
    team: str = ""
    response_url: str = ""
    trigger_id: str = ""


@dataclass(frozen=True)
class Reply:
    """An answer to the person who asked (ephemeral unless `ephemeral` is False)."""

    text: str
    blocks: list[dict[str, Any]] | None = None
    ephemeral: bool = True
    extra: dict[str, Any] = field(default_factory=dict)

    def as_ack(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "text": self.text,
            "response_type": "ephemeral" if self.ephemeral else "in_channel",
        }
        if self.blocks:
            body["blocks"] = self.blocks
        return body
