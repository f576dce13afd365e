"""Keep offers: what a Keep button stands for. The button carries only an opaque token; the AMI
it keeps is read back from here, so nothing but the token is trusted from the payload."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from bot.keys import Keys
from bot.store import guarded


class OfferStore:
    def __init__(self, client: Any, keys: Keys) -> None:
        self._r = client
        self._keys = keys

    @guarded
    def put(self, offers: Mapping[str, dict[str, Any]], ttl_s: float) -> None:
        with self._r.pipeline(transaction=True) as pipe:
            for token, data in offers.items():
                pipe.set(self._keys.offer(token), json.dumps(data), ex=max(1, int(ttl_s)))
            pipe.execute()

    @guarded
    def get(self, token: str) -> dict[str, Any] | None:
        raw = self._r.get(self._keys.offer(token))
        return dict(json.loads(raw)) if raw else None
