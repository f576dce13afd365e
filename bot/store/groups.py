"""Cached members of Slack user groups (S…), so a click does not wait on Slack every time."""

from __future__ import annotations

import json
from typing import Any

from bot.keys import Keys
from bot.store import guarded

KEEP_STALE_S = 7 * 24 * 3600  # a stale copy is still better than refusing every approver


class GroupCache:
    def __init__(self, client: Any, keys: Keys) -> None:
        self._r = client
        self._keys = keys

    @guarded
    def get(self, group_id: str) -> tuple[list[str], float] | None:
        """(members, when fetched) or None."""
        raw = self._r.get(self._keys.usergroup(group_id))
        if not raw:
            return None
        data = json.loads(raw)
        return list(data["members"]), float(data["fetched_at"])

    @guarded
    def put(self, group_id: str, members: list[str], fetched_at: float) -> None:
        payload = json.dumps({"members": members, "fetched_at": fetched_at})
        self._r.set(self._keys.usergroup(group_id), payload, ex=KEEP_STALE_S)
