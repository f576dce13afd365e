"""Leases (`SET NX PX` + token-checked renew/release) and once-per-tick claims across replicas."""

from __future__ import annotations

from typing import Any

from bot.ids import new_token
from bot.keys import Keys
from bot.store import guarded

_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


class Leases:
    def __init__(self, client: Any, keys: Keys) -> None:
        self._r = client
        self._keys = keys
        self._renew = client.register_script(_RENEW)
        self._release = client.register_script(_RELEASE)

    @guarded
    def acquire(self, name: str, ttl_s: float, token: str | None = None) -> str | None:
        """The lease's token if we got it, else None."""
        token = token or new_token()
        got = self._r.set(self._keys.lease(name), token, nx=True, px=max(1, int(ttl_s * 1000)))
        return token if got else None

    @guarded
    def renew(self, name: str, token: str, ttl_s: float) -> bool:
        return bool(self._renew(keys=[self._keys.lease(name)], args=[token, max(1, int(ttl_s * 1000))]))

    @guarded
    def hold(self, name: str, token: str, ttl_s: float) -> bool:
        """Renew if held by `token`, else try to take it with the same token (a standing lease)."""
        return self.renew(name, token, ttl_s) or self.acquire(name, ttl_s, token) is not None

    @guarded
    def release(self, name: str, token: str) -> bool:
        return bool(self._release(keys=[self._keys.lease(name)], args=[token]))

    @guarded
    def once(self, kind: str, ident: str, ttl_s: float) -> bool:
        """True for exactly one caller per (kind, ident) within `ttl_s`, across all replicas:
        one run per scheduler tick, one acceptance per request signature."""
        return bool(self._r.set(self._keys.once(kind, ident), "1", nx=True, ex=max(1, int(ttl_s))))
