"""The only package that speaks Redis. Every failure to reach Redis becomes StoreUnavailable."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

import redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from bot.errors import StoreUnavailable

P = ParamSpec("P")
R = TypeVar("R")


def connect(url: str, *, max_connections: int = 64) -> redis.Redis:
    """A client that fails fast and reconnects by itself.

    The ack path must answer inside Slack's 3 s even when Redis hangs (accepts connections but
    does not answer): one attempt with a 1 s socket timeout, no retry; then StoreUnavailable.
    """
    pool = redis.BlockingConnectionPool.from_url(
        url,
        decode_responses=True,
        max_connections=max_connections,
        timeout=1,
        socket_connect_timeout=0.5,
        socket_timeout=1,
        health_check_interval=15,
        retry_on_timeout=False,
        retry=Retry(ExponentialBackoff(cap=0.1, base=0.05), 0),
    )
    return redis.Redis(connection_pool=pool)


def guarded(fn: Callable[P, R]) -> Callable[P, R]:
    """Map redis' connection failures to StoreUnavailable (nothing half-done: writes are transactions)."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError) as exc:
            raise StoreUnavailable() from exc
        except redis.ResponseError as exc:
            if "READONLY" in str(exc) or "LOADING" in str(exc) or "MISCONF" in str(exc):
                raise StoreUnavailable() from exc
            raise

    return wrapper


def ping(client: Any) -> bool:
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
