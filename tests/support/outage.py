"""The app's resources with their Redis clients pointed elsewhere: another store, or where
nothing listens (outage drills)."""

from __future__ import annotations

import dataclasses

from api.idempotency import IdempotencyStore
from api.resources import Resources, revocations_for
from common.auth.lockout import LoginLockout
from common.cache import ResponseCache
from common.jobs import JobPublisher, create_producer
from common.ratelimit import RateLimiter
from common.redis import create_redis
from common.subscribers import change_subscribers

DEAD_REDIS = "redis://127.0.0.1:1/0"


def with_security_store(resources: Resources, url: str, *, fail_open: bool = True) -> Resources:
    """Limits, lockouts and revocations on the Redis at `url`; the cache and broker as they are
    (close the new client with `resources.security_redis.aclose()`)."""
    settings = resources.settings.model_copy(
        update={"security_redis_url": url, "rate_limit_fail_open": fail_open}
    )
    security = create_redis(settings, url)
    return dataclasses.replace(
        resources,
        settings=settings,
        security_redis=security,
        limiter=RateLimiter(security, fail_open=fail_open),
        lockout=LoginLockout(security, settings),
        revocations=revocations_for(security, settings),
    )


def without_security_redis(resources: Resources, *, fail_open: bool = True) -> Resources:
    """Limits, lockouts and revocations unreachable; the cache and the broker still up."""
    return with_security_store(resources, DEAD_REDIS, fail_open=fail_open)


def without_redis(resources: Resources, *, fail_open: bool = True) -> Resources:
    """Every Redis unreachable: the security store, the cache and the broker."""
    degraded = without_security_redis(resources, fail_open=fail_open)
    settings = degraded.settings.model_copy(
        update={"redis_url": DEAD_REDIS, "broker_url": DEAD_REDIS}
    )
    cache = ResponseCache(degraded.security_redis, ttl_seconds=60)
    return dataclasses.replace(
        degraded,
        settings=settings,
        redis=degraded.security_redis,
        publisher=JobPublisher(create_producer(settings)),
        cache=cache,
        subscribers=change_subscribers(cache),
        idempotency=IdempotencyStore(degraded.security_redis, ttl_seconds=60),
    )
