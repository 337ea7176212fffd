"""At start-up the API says, in its log, when the security store could lose what it keeps:
shared with the cache in production, or on a Redis that evicts keys. A store that is down
never stops a start."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
from redis.asyncio import Redis

from common.config import Environment, Settings
from common.redis import create_redis
from common.security.store_check import security_store_problems, warn_about_the_security_store
from tests.support.redis_server import RedisServer

STRONG = "a-real-secret-of-enough-length-for-production-0123456789"


@pytest.fixture
def private_redis() -> Iterator[RedisServer]:
    server = RedisServer().start()
    yield server
    server.stop()


def _production(**fields: Any) -> Settings:
    return Settings(env=Environment.PRODUCTION, jwt_secret=STRONG, flower_password=STRONG, **fields)


async def test_a_noeviction_store_of_its_own_is_fine(private_redis: RedisServer) -> None:
    settings = _production(security_redis_url=private_redis.url)
    redis = create_redis(settings, private_redis.url)
    try:
        assert await security_store_problems(redis, settings) == []
    finally:
        await redis.aclose()


async def test_an_evicting_store_is_named_with_its_policy(
    private_redis: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    settings = _production(security_redis_url=private_redis.url)
    redis = create_redis(settings, private_redis.url)
    try:
        await redis.config_set("maxmemory-policy", "allkeys-lru")
        with caplog.at_level(logging.ERROR):
            await warn_about_the_security_store(redis, settings)
    finally:
        await redis.aclose()
    assert "security_store_unsafe" in caplog.text
    assert "maxmemory-policy allkeys-lru" in caplog.text


async def test_a_store_shared_with_the_cache_in_production_is_named(
    private_redis: RedisServer,
) -> None:
    settings = _production(redis_url=private_redis.url)
    redis = create_redis(settings, private_redis.url)
    try:
        (problem,) = await security_store_problems(redis, settings)
    finally:
        await redis.aclose()
    assert "TASKPIPE_SECURITY_REDIS_URL is not set" in problem
    local = Settings(env=Environment.DEVELOPMENT, redis_url=private_redis.url)
    redis = create_redis(local, private_redis.url)
    try:
        assert await security_store_problems(redis, local) == []  # fine for make run
    finally:
        await redis.aclose()


async def test_a_store_that_is_down_is_no_reason_not_to_start(
    private_redis: RedisServer,
) -> None:
    settings = _production(security_redis_url=private_redis.url)
    private_redis.stop()
    redis: Redis = create_redis(settings, private_redis.url)
    try:
        assert await security_store_problems(redis, settings) == []
    finally:
        await redis.aclose()
