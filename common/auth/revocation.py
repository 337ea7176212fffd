"""Stateless access tokens made revocable: Redis remembers revoked sessions for one access TTL.

Logout, refresh-token reuse and password resets (which end every session of the account) must
end access at once, not when the access token expires. Each check is one Redis round trip; when
Redis is down the check fails open (the token's signature and expiry still hold) and the failure
is logged and counted.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from redis.asyncio import Redis

from common.logging import get_logger
from common.metrics import REDIS_FAILURES
from common.redis import REDIS_ERRORS
from common.security.tokens import TokenClaims

log = get_logger(__name__)


def _family_key(family_id: uuid.UUID) -> str:
    return f"revoked:family:{family_id}"


class TokenRevocations:
    def __init__(self, redis: Redis, access_token_ttl: int) -> None:
        self._redis = redis
        self._ttl = access_token_ttl

    async def revoke_families(self, family_ids: Iterable[uuid.UUID]) -> None:
        keys = [_family_key(family_id) for family_id in family_ids]
        if not keys:
            return
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for key in keys:
                    pipe.set(key, b"1", ex=self._ttl)
                await pipe.execute()
        except REDIS_ERRORS as exc:
            REDIS_FAILURES.labels(operation="revocation").inc()
            log.error("token_revocation_unavailable", error=str(exc))

    async def is_revoked(self, claims: TokenClaims) -> bool:
        """Every access token names its session (`fam`); one GET tells if it was ended."""
        if claims.family_id is None:
            return True  # not one of ours: every token we issue carries its session
        try:
            return bool(await self._redis.exists(_family_key(claims.family_id)))
        except REDIS_ERRORS as exc:
            REDIS_FAILURES.labels(operation="revocation").inc()
            log.warning("token_revocation_check_skipped", error=str(exc))
            return False
