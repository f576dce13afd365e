"""Who may use amibot where: the workspace and channel checks applied to every request (pure)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Access:
    team_id: str | None  # AMIBOT_TEAM_ID: the only workspace served
    allowed_channels: frozenset[str]  # AMIBOT_ALLOWED_CHANNELS: empty means any

    def refuse_team(self, team: str | None) -> str | None:
        if self.team_id and team and team != self.team_id:
            return "amibot does not serve this workspace."
        if self.team_id and not team:
            return "amibot could not tell which workspace this request comes from."
        return None

    def refuse_channel(self, channel: str | None) -> str | None:
        if not self.allowed_channels:
            return None
        if not channel:
            return "amibot could not tell which channel this request comes from."
        if channel in self.allowed_channels:
            return None
        where = ", ".join(f"<#{c}>" for c in sorted(self.allowed_channels))
        return f"`/ami` is not enabled in this channel. Use it in {where}."
