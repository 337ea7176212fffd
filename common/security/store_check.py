"""A look at the security store when the API starts. Rate limits, login lockouts and
revocations must never be evicted (an evicted key is a lock lifted or an ended session working
again), yet nothing fails when they share an evicting cache Redis: without this check the
mistake would stay silent until it mattered. It only logs (`security_store_unsafe`, level
error), so a store that is down or hides CONFIG (some managed services do) never stops a start.
"""

from __future__ import annotations

import asyncio

from redis.asyncio import Redis

from common.config import Settings
from common.logging import get_logger
from common.redis import REDIS_ERRORS

log = get_logger(__name__)

SAFE_POLICY = "noeviction"


async def security_store_problems(redis: Redis, settings: Settings) -> list[str]:
    """What makes the security store unsafe, in words for the operator (none: an empty list)."""
    problems = []
    if settings.is_production and settings.security_store_url == settings.redis_url:
        problems.append(
            "TASKPIPE_SECURITY_REDIS_URL is not set, so rate limits, lockouts and revocations"
            " share the cache Redis: give them a database or instance of their own"
        )
    try:
        async with asyncio.timeout(2):
            config = await redis.config_get("maxmemory-policy")
    except REDIS_ERRORS as exc:
        log.info("security_store_policy_unknown", error=str(exc))
        return problems
    policy = config.get("maxmemory-policy")  # str keys and values, whatever decode_responses
    if policy is not None and policy != SAFE_POLICY:
        problems.append(
            f"the security Redis evicts keys under memory pressure (maxmemory-policy {policy}):"
            f" set maxmemory-policy {SAFE_POLICY}"
        )
    return problems


async def warn_about_the_security_store(redis: Redis, settings: Settings) -> None:
    for problem in await security_store_problems(redis, settings):
        log.error("security_store_unsafe", problem=problem)
