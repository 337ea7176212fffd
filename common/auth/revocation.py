"""Stateless access tokens made revocable: Redis remembers revoked sessions for one access TTL.

Logout, refresh-token reuse and password resets must end access at once, not when the access
token expires. Each check is one Redis round trip; when Redis is down the check fails open (the
token's signature and expiry still hold) and the failure is logged and counted.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime

from redis.asyncio import Redis

from common.logging import get_logger
from common.metrics import REDIS_FAILURES
from common.redis import REDIS_ERRORS
from common.security.tokens import TokenClaims

log = get_logger(__name__)


def _family_key(family_id: uuid.UUID) -> str:
    return f"revoked:family:{family_id}"


def _user_key(user_id: uuid.UUID) -> str:
    return f"revoked:user:{user_id}"


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

    async def revoke_user_tokens_before(self, user_id: uuid.UUID, moment: datetime) -> None:
        try:
            await self._redis.set(_user_key(user_id), str(int(moment.timestamp())), ex=self._ttl)
        except REDIS_ERRORS as exc:
            REDIS_FAILURES.labels(operation="revocation").inc()
            log.error("token_revocation_unavailable", error=str(exc))

    async def is_revoked(self, claims: TokenClaims) -> bool:
        keys = [_user_key(claims.user_id)]
        if claims.family_id is not None:
            keys.append(_family_key(claims.family_id))
        try:
            values = await self._redis.mget(keys)
        except REDIS_ERRORS as exc:
            REDIS_FAILURES.labels(operation="revocation").inc()
            log.warning("token_revocation_check_skipped", error=str(exc))
            return False
        revoked_before, family_revoked = values[0], values[1] if len(values) > 1 else None
        if family_revoked is not None:
            return True
        return revoked_before is not None and claims.issued_at.timestamp() < int(revoked_before)
