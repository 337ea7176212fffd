"""Sliding-window rate limiting in Redis, one atomic Lua script per check.

Everything here lives on the security Redis (`TASKPIPE_SECURITY_REDIS_URL`), which must not
evict keys: an evicted counter is a limit silently lifted.
"""

from __future__ import annotations

import math
import secrets
from dataclasses import dataclass

from redis.asyncio import Redis

from common.errors import RateLimited, ServiceUnavailable
from common.logging import get_logger
from common.metrics import RATE_LIMIT_REJECTIONS, REDIS_FAILURES
from common.redis import REDIS_ERRORS

log = get_logger(__name__)

# A sorted set of hit timestamps (ms) per key: drop those older than the window, count the
# rest, and add this hit only if under the limit. Rejected hits are not recorded, so a client
# that keeps hammering is let back in as soon as its oldest hit leaves the window.
_SLIDING_WINDOW = """
local key = KEYS[1]
local window = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local member = ARGV[3]
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
local count = redis.call('ZCARD', key)
if count < limit then
  redis.call('ZADD', key, now, member)
  redis.call('PEXPIRE', key, window)
  local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
  return {1, limit - count - 1, tonumber(oldest[2]) + window - now}
end
local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
return {0, 0, tonumber(oldest[2]) + window - now}
"""


@dataclass(frozen=True, slots=True)
class RateLimitResult:
    allowed: bool
    limit: int
    remaining: int
    reset_seconds: int
    degraded: bool = False  # Redis was unreachable; `allowed` is the fail-open/closed setting

    @property
    def headers(self) -> dict[str, str]:
        """IETF draft RateLimit fields, plus Retry-After when refused."""
        headers = {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(self.reset_seconds),
        }
        if not self.allowed:
            headers["Retry-After"] = str(self.reset_seconds)
        return headers


class RateLimiter:
    def __init__(self, redis: Redis, *, fail_open: bool) -> None:
        self._redis = redis
        self._fail_open = fail_open
        self._script = redis.register_script(_SLIDING_WINDOW)

    async def hit(
        self,
        name: str,
        key: str,
        *,
        limit: int,
        window_seconds: int,
        fail_open: bool | None = None,
    ) -> RateLimitResult:
        """Record one hit against `name:key`; on a Redis failure allow or refuse by setting
        (or by `fail_open`, for the limits that must never fail open)."""
        fail_open = self._fail_open if fail_open is None else fail_open
        try:
            allowed, remaining, reset_ms = await self._script(
                keys=[f"rl:{name}:{key}"],
                args=[window_seconds * 1000, limit, secrets.token_hex(8)],
            )
        except REDIS_ERRORS as exc:
            REDIS_FAILURES.labels(operation="rate_limit").inc()
            log.warning("rate_limit_unavailable", limit=name, fail_open=fail_open, error=str(exc))
            return RateLimitResult(fail_open, limit, limit if fail_open else 0, 1, degraded=True)
        result = RateLimitResult(
            allowed=bool(allowed),
            limit=limit,
            remaining=int(remaining),
            reset_seconds=max(1, math.ceil(int(reset_ms) / 1000)),
        )
        if not result.allowed:
            RATE_LIMIT_REJECTIONS.labels(limit=name).inc()
        return result

    async def enforce(
        self,
        name: str,
        key: str,
        *,
        limit: int,
        window_seconds: int,
        fail_open: bool | None = None,
    ) -> None:
        """`hit`, refusing past the limit: 429 with the limit's headers, or 503 when the limit
        cannot be checked and fails closed."""
        result = await self.hit(
            name, key, limit=limit, window_seconds=window_seconds, fail_open=fail_open
        )
        if result.allowed:
            return
        if result.degraded:
            raise ServiceUnavailable(
                "Rate limiting is unavailable; try again shortly", headers={"Retry-After": "5"}
            )
        raise RateLimited("Too many requests; slow down", headers=result.headers)

    async def reset(self, name: str, key: str) -> None:
        try:
            await self._redis.delete(f"rl:{name}:{key}")
        except REDIS_ERRORS:
            REDIS_FAILURES.labels(operation="rate_limit").inc()
