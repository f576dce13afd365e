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
    """A client that fails fast (the ack path must stay well inside Slack's 3 s) and reconnects by itself."""
    pool = redis.BlockingConnectionPool.from_url(
        url,
        decode_responses=True,
        max_connections=max_connections,
        timeout=2,
        socket_connect_timeout=0.5,
        socket_timeout=2,
        health_check_interval=15,
        retry_on_timeout=True,
        retry=Retry(ExponentialBackoff(cap=0.2, base=0.05), 1),
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
