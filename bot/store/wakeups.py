"""Wake-ups across processes: a committed change that made work or notices due publishes it on a
Redis channel (inside the same MULTI/EXEC, so at no extra round trip: `EffectWriter.write`); every
process doing background work listens and runs that job at once instead of at its next tick."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import redis

from bot.keys import Keys

log = logging.getLogger(__name__)

WORK = "work"
OUTBOX = "outbox"


class Wakeups:
    def __init__(self, client: Any, keys: Keys) -> None:
        self._r = client
        self._channel = keys.wake

    def listen(self, on_wake: Callable[[str], None], stop: threading.Event) -> threading.Thread:
        """A daemon thread calling `on_wake("work" | "outbox")`; it reconnects by itself."""

        def loop() -> None:
            while not stop.is_set():
                try:
                    pubsub = self._r.pubsub(ignore_subscribe_messages=True)
                    pubsub.subscribe(self._channel)
                    while not stop.is_set():
                        message = pubsub.get_message(timeout=1.0)
                        if message and message.get("type") == "message":
                            on_wake(str(message["data"]))
                    pubsub.close()
                except (redis.RedisError, OSError):
                    log.debug("wake-up channel unavailable; retrying", exc_info=True)
                    stop.wait(1.0)

        thread = threading.Thread(target=loop, name="amibot-wakeups", daemon=True)
        thread.start()
        return thread
