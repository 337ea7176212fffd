"""Per-user response cache in Redis, invalidated by a generation counter instead of key scans.

Entries are the exact JSON bytes of a response, stored under
`cache:{<user id>}:<generation>:<kind>:<hash of the normalised request>`. Every write to a user's
tasks or categories bumps `gen:{<user id>}` after its commit, so later reads build new keys and
the old entries simply expire: no stale page is served and nothing is ever scanned or deleted.
(`{<user id>}` is a Redis Cluster hash tag: a user's keys share one slot.)

A generation starts from Redis' clock in microseconds whenever its key is missing (first use,
expiry, eviction), never from 0, so an entry of an earlier epoch can never be mistaken for one
of the current epoch. A hit costs one round trip: one script reads the generation and the entry.

An entry larger than `max_entry_bytes` is served but not stored, so no single answer can take
a large share of the cache. This Redis may evict (`allkeys-lru` is right for it): a lost entry
is a miss, a lost generation starts a new epoch.

Redis failures never fail a request: lookups fall through to PostgreSQL, failures are counted
(`taskpipe_redis_failures_total{operation="cache"}`) and logged once per outage. A generation
bump that failed is remembered and retried before this process trusts the cache for that user
again, so a write acknowledged during a Redis blip is not followed by a stale read here.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from redis.asyncio import Redis

from common.logging import get_logger
from common.metrics import CACHE_REQUESTS, REDIS_FAILURES
from common.redis import REDIS_ERRORS

log = get_logger(__name__)

# KEYS[1] generation key; ARGV[1] entry key prefix; ARGV[2] entry key suffix; ARGV[3] gen TTL.
_LOOKUP = """
local gen = redis.call('GET', KEYS[1])
if not gen then
  local t = redis.call('TIME')
  gen = t[1] .. string.format('%06d', tonumber(t[2]))
  if not redis.call('SET', KEYS[1], gen, 'NX', 'EX', ARGV[3]) then
    gen = redis.call('GET', KEYS[1])
  end
end
return {gen, redis.call('GET', ARGV[1] .. gen .. ARGV[2])}
"""

# KEYS[1] generation key; ARGV[1] gen TTL.
_BUMP = """
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('INCR', KEYS[1])
else
  local t = redis.call('TIME')
  redis.call('SET', KEYS[1], t[1] .. string.format('%06d', tonumber(t[2])))
end
redis.call('EXPIRE', KEYS[1], ARGV[1])
return 1
"""

GENERATION_TTL_SECONDS = 7 * 24 * 3600
MAX_PENDING_BUMPS = 10_000


def _tag(user_id: uuid.UUID) -> str:
    return "{" + str(user_id) + "}"


def generation_key(user_id: uuid.UUID) -> str:
    return f"gen:{_tag(user_id)}"


def request_hash(normalised: str) -> str:
    return hashlib.blake2b(normalised.encode(), digest_size=16).hexdigest()


@dataclass(frozen=True, slots=True)
class Lookup:
    """What a lookup found: the cached body, and the generation to store a fresh one under."""

    body: bytes | None
    generation: bytes | None


class ResponseCache:
    def __init__(
        self,
        redis: Redis,
        *,
        ttl_seconds: int,
        max_entry_bytes: int = 256 * 1024,
        generation_ttl_seconds: int = GENERATION_TTL_SECONDS,
        retry_after_seconds: float = 1.0,
    ) -> None:
        self._redis = redis
        self._ttl = ttl_seconds
        self._max_entry_bytes = max_entry_bytes
        self._generation_ttl = max(generation_ttl_seconds, ttl_seconds * 2)
        self._retry_after = retry_after_seconds
        self._lookup = redis.register_script(_LOOKUP)
        self._bump = redis.register_script(_BUMP)
        self._skip_until = 0.0
        self._healthy = True
        self._pending_bumps: set[uuid.UUID] = set()

    async def get_or_build(
        self, user_id: uuid.UUID, kind: str, key: str, build: Callable[[], Awaitable[bytes]]
    ) -> bytes:
        """The cached body for `key`, or `build()`'s result (stored for the next reader)."""
        found = await self.lookup(user_id, kind, key)
        if found.body is not None:
            return found.body
        body = await build()
        if found.generation is not None and len(body) <= self._max_entry_bytes:
            await self._store(user_id, found.generation, kind, key, body)
        return body

    async def lookup(self, user_id: uuid.UUID, kind: str, key: str) -> Lookup:
        if not await self._usable_for(user_id):
            CACHE_REQUESTS.labels(kind=kind, result="error").inc()
            return Lookup(None, None)
        try:
            generation, body = await self._lookup(
                keys=[generation_key(user_id)],
                args=[
                    f"cache:{_tag(user_id)}:",
                    f":{kind}:{request_hash(key)}",
                    self._generation_ttl,
                ],
            )
        except REDIS_ERRORS as exc:
            self._failed("lookup", exc)
            CACHE_REQUESTS.labels(kind=kind, result="error").inc()
            return Lookup(None, None)
        self._succeeded()
        CACHE_REQUESTS.labels(kind=kind, result="miss" if body is None else "hit").inc()
        return Lookup(body, generation)

    async def invalidate(self, user_id: uuid.UUID) -> None:
        """Bump the user's generation (call after the write committed). Never raises."""
        self._pending_bumps.add(user_id)
        await self._flush_pending_bumps()

    async def _store(
        self, user_id: uuid.UUID, generation: bytes, kind: str, key: str, body: bytes
    ) -> None:
        entry = f"cache:{_tag(user_id)}:{generation.decode()}:{kind}:{request_hash(key)}"
        try:
            await self._redis.set(entry, body, ex=self._ttl)
        except REDIS_ERRORS as exc:
            self._failed("store", exc)

    async def _usable_for(self, user_id: uuid.UUID) -> bool:
        if time.monotonic() < self._skip_until:
            return False
        if user_id in self._pending_bumps:
            await self._flush_pending_bumps()
            return user_id not in self._pending_bumps
        return True

    async def _flush_pending_bumps(self) -> None:
        for user_id in list(self._pending_bumps):
            try:
                await self._bump(keys=[generation_key(user_id)], args=[self._generation_ttl])
            except REDIS_ERRORS as exc:
                self._failed("invalidate", exc)
                if len(self._pending_bumps) > MAX_PENDING_BUMPS:
                    # Past this, entries expire (cache TTL) sooner than we could bump them all.
                    log.error("cache_invalidations_dropped", count=len(self._pending_bumps))
                    self._pending_bumps.clear()
                return
            self._pending_bumps.discard(user_id)
        self._succeeded()

    def _failed(self, operation: str, exc: BaseException) -> None:
        REDIS_FAILURES.labels(operation="cache").inc()
        self._skip_until = time.monotonic() + self._retry_after
        if self._healthy:
            self._healthy = False
            log.warning("cache_unavailable", operation=operation, error=repr(exc))

    def _succeeded(self) -> None:
        if not self._healthy:
            self._healthy = True
            log.info("cache_recovered", pending_invalidations=len(self._pending_bumps))
