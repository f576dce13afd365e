"""The append-only audit log: a Redis stream of who did what, to what, with what result."""

from __future__ import annotations

from typing import Any

from bot.keys import Keys
from bot.store import guarded
from bot.store.effects import AuditEntry, Effects, EffectWriter


class AuditLog:
    def __init__(self, client: Any, keys: Keys, effects: EffectWriter) -> None:
        self._r = client
        self._keys = keys
        self._effects = effects

    @guarded
    def append(self, *entries: AuditEntry) -> None:
        self._effects.commit(self._r, Effects(audit=entries))

    @guarded
    def last(self, n: int) -> list[dict[str, str]]:
        """Newest first."""
        return [dict(fields) for _id, fields in self._r.xrevrange(self._keys.audit, count=n)]
