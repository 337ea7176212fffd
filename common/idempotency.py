"""Idempotency-Key support: a retried request returns the first response and creates nothing.

PostgreSQL is the record: the first response (status, headers, body) is written to
`idempotency_keys` in the same transaction as what the request created, so no crash between
the commit and anything after it can let a retry create a duplicate. While a request runs it
holds a transaction-scoped advisory lock on (user, key): a duplicate sent meanwhile gets 409
at once instead of waiting. The same key with a different body is refused (422). A request
that fails rolls back, lock and all, so the client may retry with the same key.

Redis holds a copy of finished records as a fast path (a replay without touching PostgreSQL);
when Redis is away, PostgreSQL answers alone. Records live `idempotency_ttl_seconds` (24 h),
then the purge job deletes them.

Built once per process (`IdempotencyStore`) and independent of the operation: the caller
gives a fingerprint of the request and a complete response to store.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from redis.asyncio import Redis
from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from common.errors import AppError, Conflict, InvalidInput
from common.logging import get_logger
from common.metrics import REDIS_FAILURES
from common.models import IdempotencyKey
from common.redis import REDIS_ERRORS

log = get_logger(__name__)

_VALID_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")


class IdempotencyKeyReused(AppError):
    status = 422
    code = "idempotency-key-reused"
    title = "Idempotency key reused"


class IdempotentRequestInProgress(Conflict):
    code = "idempotency-request-in-progress"
    title = "A request with this idempotency key is in progress"

    def __init__(self) -> None:
        super().__init__(
            "A request with this Idempotency-Key is still being processed; retry shortly",
            headers={"Retry-After": "1"},
        )


def validate_key(key: str) -> str:
    if not _VALID_KEY.match(key):
        raise InvalidInput(
            "Idempotency-Key must be 1 to 255 visible ASCII characters",
            field="Idempotency-Key",
            location="header",
        )
    return key


def fingerprint(operation: str, payload: Any) -> str:
    """A stable digest of what was asked: the operation and its normalised body."""
    data = orjson.dumps([operation, payload], option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True, slots=True)
class StoredResponse:
    """A complete response: what a replay sends back, byte for byte."""

    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Claim:
    """The right to perform the request once, inside the caller's transaction."""

    user_id: uuid.UUID
    key_digest: str
    fingerprint: str

    @property
    def cache_key(self) -> str:
        return f"idem:{{{self.user_id}}}:{self.key_digest}"


class IdempotencyStore:
    def __init__(self, redis: Redis, *, ttl_seconds: int) -> None:
        self._redis = redis
        self._ttl = timedelta(seconds=ttl_seconds)

    async def begin(
        self, session: AsyncSession, user_id: uuid.UUID, key: str, request_fingerprint: str
    ) -> Claim | StoredResponse:
        """Claim the key in `session`'s transaction, or return the response of the request
        that already used it (422 if that request had another body, 409 while it runs)."""
        claim = Claim(user_id, hashlib.sha256(key.encode()).hexdigest(), request_fingerprint)
        cached = await self._cached(claim)
        if cached is not None:
            return self._replay(claim, *cached)
        lock = func.hashtextextended(f"{user_id}:{claim.key_digest}", 0)
        if not await session.scalar(select(func.pg_try_advisory_xact_lock(lock))):
            raise IdempotentRequestInProgress()
        row = await session.get(IdempotencyKey, (user_id, claim.key_digest))
        if row is None or row.created_at <= datetime.now(UTC) - self._ttl:
            return claim
        stored = StoredResponse(status=row.status, body=row.body, headers=dict(row.headers))
        replay = self._replay(claim, row.fingerprint, stored)
        await self._cache(claim, row.fingerprint, stored, row.created_at)
        return replay

    async def record(self, session: AsyncSession, claim: Claim, response: StoredResponse) -> None:
        """Write the response in the caller's transaction (replacing an expired record)."""
        values = {
            "user_id": claim.user_id,
            "key_digest": claim.key_digest,
            "fingerprint": claim.fingerprint,
            "status": response.status,
            "headers": response.headers,
            "body": response.body,
            "created_at": func.now(),
        }
        statement = insert(IdempotencyKey).values(values)
        await session.execute(
            statement.on_conflict_do_update(
                index_elements=[IdempotencyKey.user_id, IdempotencyKey.key_digest],
                set_={name: statement.excluded[name] for name in values if name != "user_id"},
            )
        )

    async def remember(self, claim: Claim, response: StoredResponse) -> None:
        """After the commit: the fast-path copy in Redis (best effort)."""
        await self._cache(claim, claim.fingerprint, response, datetime.now(UTC))

    @staticmethod
    def _replay(claim: Claim, stored_fingerprint: str, stored: StoredResponse) -> StoredResponse:
        if stored_fingerprint != claim.fingerprint:
            raise IdempotencyKeyReused(
                "This Idempotency-Key was already used with a different request body"
            )
        return stored

    async def _cached(self, claim: Claim) -> tuple[str, StoredResponse] | None:
        try:
            raw = await self._redis.get(claim.cache_key)
        except REDIS_ERRORS as exc:
            self._failed("read", exc)
            return None
        if raw is None:
            return None
        record = orjson.loads(raw)
        stored = StoredResponse(
            status=int(record["status"]),
            body=str(record["body"]).encode(),
            headers=dict(record["headers"]),
        )
        return str(record["fp"]), stored

    async def _cache(
        self, claim: Claim, stored_fingerprint: str, stored: StoredResponse, created: datetime
    ) -> None:
        left = int((created + self._ttl - datetime.now(UTC)).total_seconds())
        if left <= 0:
            return
        record = orjson.dumps(
            {
                "fp": stored_fingerprint,
                "status": stored.status,
                "headers": stored.headers,
                "body": stored.body.decode(),
            }
        )
        try:
            await self._redis.set(claim.cache_key, record, ex=left)
        except REDIS_ERRORS as exc:
            self._failed("write", exc)

    @staticmethod
    def _failed(step: str, exc: BaseException) -> None:
        REDIS_FAILURES.labels(operation="idempotency").inc()
        log.warning("idempotency_fast_path_unavailable", step=step, error=repr(exc))
