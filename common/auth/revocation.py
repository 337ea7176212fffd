"""Stateless access tokens made revocable, and the per-user rate limit, in one Redis call.

Logout, refresh-token reuse, password changes and resets, ended sessions and revoked personal
access tokens must end access at once, not when a token expires or a process forgets it: the
security Redis remembers each ended credential (a session's family id, a personal token's id)
for one access-token lifetime. Every authenticated request then asks, in one script call,
both "was this credential ended?" and "is this user within the per-user rate limit?", so the
limit costs no extra round trip, and a personal token counts against the same limit.

The limit is GCRA (the generic cell rate algorithm): one key per user holding the instant at
which the user's allowance is whole again, so a user costs one small string in Redis however
high the limit (a sliding-window log would keep one entry per request). It allows a burst of
`limit` requests, then one every `window / limit`.

When the security Redis is down the check degrades by `TASKPIPE_RATE_LIMIT_FAIL_OPEN` (default:
let the request through; the caller then asks PostgreSQL whether the credential was ended,
`api.deps`); failures are logged and counted in
`taskpipe_redis_failures_total{operation="admission"}`. A mark that could not be written is
written again by a job (`common.auth.sessions.CredentialRevoker`), so a credential ended during
an outage does not come back when Redis does.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from redis.asyncio import Redis

from common.config import Settings
from common.logging import get_logger
from common.metrics import RATE_LIMIT_REJECTIONS, REDIS_FAILURES
from common.ratelimit import RateLimitResult
from common.redis import REDIS_ERRORS

log = get_logger(__name__)

# KEYS[1] the session's revocation key, KEYS[2] the user's limit key;
# ARGV[1] limit, ARGV[2] window (ms). Returns {-1} for an ended session, else
# {allowed (1|0), remaining, ms until the allowance is whole (allowed) or until retry}.
_ADMIT = """
if redis.call('EXISTS', KEYS[1]) == 1 then return {-1, 0, 0} end
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local interval = window / limit
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local tat = tonumber(redis.call('GET', KEYS[2])) or now
if tat < now then tat = now end
local new_tat = tat + interval
if new_tat - now > window then
  return {0, 0, math.ceil(new_tat - window - now)}
end
local busy = math.max(1, math.ceil(new_tat - now))  -- sub-ms intervals vanish at epoch scale
redis.call('SET', KEYS[2], math.ceil(new_tat), 'PX', busy)
return {1, math.floor((window - (new_tat - now)) / interval), busy}
"""


def _tag(user_id: uuid.UUID) -> str:
    return "{" + str(user_id) + "}"  # a Redis Cluster hash tag: one user's keys share a slot


def revoked_key(user_id: uuid.UUID, credential_id: uuid.UUID) -> str:
    """The mark of an ended session (its family id) or a revoked personal token (its id)."""
    return f"revoked:{_tag(user_id)}:{credential_id}"


def user_limit_key(user_id: uuid.UUID) -> str:
    return f"rl:user:{_tag(user_id)}"


@dataclass(frozen=True, slots=True)
class Admission:
    """What the per-request check found: an ended session, or the user's rate-limit state."""

    revoked: bool
    limit: RateLimitResult


class TokenRevocations:
    def __init__(
        self,
        redis: Redis,
        access_token_ttl: int,
        *,
        user_limit: int,
        user_window_seconds: int,
        fail_open: bool,
    ) -> None:
        self._redis = redis
        self._ttl = access_token_ttl
        self._limit = user_limit
        self._window_ms = user_window_seconds * 1000
        self._fail_open = fail_open
        self._admit = redis.register_script(_ADMIT)

    @classmethod
    def from_settings(cls, redis: Redis, settings: Settings) -> TokenRevocations:
        """A mark outlives every access token and every process's memory of a personal
        token."""
        return cls(
            redis,
            max(settings.access_token_ttl, 2 * settings.pat_cache_seconds),
            user_limit=settings.user_rate_limit,
            user_window_seconds=settings.user_rate_limit_window_seconds,
            fail_open=settings.rate_limit_fail_open,
        )

    async def revoke(self, user_id: uuid.UUID, credential_ids: Iterable[uuid.UUID]) -> bool:
        """Mark the credentials ended; False (logged, counted) when Redis is unreachable."""
        try:
            await self.revoke_or_raise(user_id, credential_ids)
        except REDIS_ERRORS as exc:
            REDIS_FAILURES.labels(operation="revocation").inc()
            log.error("token_revocation_unavailable", error=str(exc))
            return False
        return True

    async def revoke_or_raise(
        self, user_id: uuid.UUID, credential_ids: Iterable[uuid.UUID]
    ) -> None:
        keys = [revoked_key(user_id, credential_id) for credential_id in credential_ids]
        if not keys:
            return
        async with self._redis.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.set(key, b"1", ex=self._ttl)
            await pipe.execute()

    async def admit(self, user_id: uuid.UUID, credential_id: uuid.UUID) -> Admission:
        """One script call checks the credential (a session, a personal token) and counts the
        request against its user's limit."""
        try:
            outcome, remaining, wait_ms = await self._admit(
                keys=[revoked_key(user_id, credential_id), user_limit_key(user_id)],
                args=[self._limit, self._window_ms],
            )
        except REDIS_ERRORS as exc:
            REDIS_FAILURES.labels(operation="admission").inc()
            log.warning("admission_check_degraded", fail_open=self._fail_open, error=str(exc))
            limit = RateLimitResult(
                self._fail_open, self._limit, self._limit if self._fail_open else 0, 1, True
            )
            return Admission(revoked=False, limit=limit)
        if outcome == -1:
            return Admission(revoked=True, limit=RateLimitResult(True, self._limit, 0, 1))
        result = RateLimitResult(
            allowed=outcome == 1,
            limit=self._limit,
            remaining=int(remaining),
            reset_seconds=max(1, math.ceil(int(wait_ms) / 1000)),
        )
        if not result.allowed:
            RATE_LIMIT_REJECTIONS.labels(limit="user").inc()
        return Admission(revoked=False, limit=result)
