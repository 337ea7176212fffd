"""Per-account login lockout: too many failures in a window lock the account for a while."""

from __future__ import annotations

from redis.asyncio import Redis

from common.config import Settings
from common.metrics import REDIS_FAILURES
from common.ratelimit import RateLimiter
from common.redis import REDIS_ERRORS


class LoginLockout:
    def __init__(self, redis: Redis, limiter: RateLimiter, settings: Settings) -> None:
        self._redis = redis
        self._limiter = limiter
        self._settings = settings

    @staticmethod
    def _lock_key(email: str) -> str:
        return f"lockout:{email}"

    async def retry_after(self, email: str) -> int | None:
        """Seconds left on the account's lock, or None when it may try to log in."""
        try:
            ttl = await self._redis.ttl(self._lock_key(email))
        except REDIS_ERRORS:
            REDIS_FAILURES.labels(operation="lockout").inc()
            return None
        return int(ttl) if ttl and ttl > 0 else None

    async def record_failure(self, email: str) -> None:
        result = await self._limiter.hit(
            "login_failures",
            email,
            limit=self._settings.login_max_failures,
            window_seconds=self._settings.login_failure_window_seconds,
        )
        if result.remaining == 0 or not result.allowed:
            try:
                await self._redis.set(
                    self._lock_key(email), b"1", ex=self._settings.lockout_seconds
                )
            except REDIS_ERRORS:
                REDIS_FAILURES.labels(operation="lockout").inc()
            await self._limiter.reset("login_failures", email)

    async def clear(self, email: str) -> None:
        await self._limiter.reset("login_failures", email)
