"""The shared async Redis client, with short timeouts so an outage degrades instead of hanging."""

from __future__ import annotations

from redis.asyncio import Redis
from redis.exceptions import RedisError

from common.config import Settings

REDIS_ERRORS: tuple[type[Exception], ...] = (RedisError, OSError, TimeoutError)


def create_redis(settings: Settings, url: str | None = None) -> Redis:
    """A client for `url` (default: the main Redis, `TASKPIPE_REDIS_URL`)."""
    return Redis.from_url(
        url or settings.redis_url,
        socket_connect_timeout=0.5,
        socket_timeout=0.5,
        health_check_interval=30,
        max_connections=200,
        decode_responses=False,
    )
