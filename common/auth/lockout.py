"""Per-account login lockout: too many failures in a window lock the account for a while.

Each attempt is counted atomically *before* the password is checked, so a burst of concurrent
guesses cannot all slip past the limit while the first ones are still being hashed.
"""

from __future__ import annotations

from redis.asyncio import Redis

from common.config import Settings
from common.errors import AccountLocked
from common.metrics import REDIS_FAILURES
from common.ratelimit import RateLimiter, RateLimitResult
from common.redis import REDIS_ERRORS

ATTEMPTS = "login_attempts"


class LoginLockout:
    def __init__(self, redis: Redis, limiter: RateLimiter, settings: Settings) -> None:
        self._redis = redis
        self._limiter = limiter
        self._settings = settings

    @staticmethod
    def _lock_key(email: str) -> str:
        return f"lockout:{email}"

    async def begin_attempt(self, email: str) -> RateLimitResult:
        """Count this attempt, or raise AccountLocked (423) if the account may not try now."""
        retry_after = await self._retry_after(email)
        if retry_after is not None:
            raise AccountLocked(retry_after)
        attempt = await self._limiter.hit(
            ATTEMPTS,
            email,
            limit=self._settings.login_max_failures,
            window_seconds=self._settings.login_failure_window_seconds,
        )
        if not attempt.allowed and not attempt.degraded:
            await self._lock(email)
            raise AccountLocked(self._settings.lockout_seconds)
        return attempt

    async def record_failure(self, email: str, attempt: RateLimitResult) -> None:
        """The attempt failed: if it used up the window's allowance, lock the account."""
        if attempt.remaining == 0 and not attempt.degraded:
            await self._lock(email)

    async def clear(self, email: str) -> None:
        """A success (or a password reset) forgives the attempts counted so far."""
        await self._limiter.reset(ATTEMPTS, email)

    async def _retry_after(self, email: str) -> int | None:
        try:
            ttl = await self._redis.ttl(self._lock_key(email))
        except REDIS_ERRORS:
            REDIS_FAILURES.labels(operation="lockout").inc()
            return None
        return int(ttl) if ttl and ttl > 0 else None

    async def _lock(self, email: str) -> None:
        try:
            await self._redis.set(self._lock_key(email), b"1", ex=self._settings.lockout_seconds)
        except REDIS_ERRORS:
            REDIS_FAILURES.labels(operation="lockout").inc()
        await self._limiter.reset(ATTEMPTS, email)
