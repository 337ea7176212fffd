"""Idempotency-Key support: a retried request returns the first response and creates nothing.

One call (`IdempotencyStore.respond`) wraps the handler's work. PostgreSQL is the record: the
first response (status, headers, body) is written in the request's unit of work, the same
transaction as what the request created, so no crash between the commit and anything after it
can let a retry create a duplicate. While a request runs it holds a transaction-scoped
advisory lock on (user, key): a duplicate sent meanwhile gets 409 at once instead of waiting.
The same key with a different body is refused (422). A request that fails rolls back, lock
and all, so the client may retry with the same key.

Redis holds a copy of finished records as a fast path (a replay without touching PostgreSQL),
written after the commit; when Redis is away, PostgreSQL answers alone. Records live
`idempotency_ttl_seconds` (24 h), then the purge job deletes them.

Built once per process (`api.resources`) and independent of the operation: the caller gives
what identifies the request and the work that produces its complete response.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from redis.asyncio import Redis
from starlette.responses import Response

from common.db.uow import UnitOfWork
from common.errors import AppError, Conflict, InvalidInput
from common.idempotency.repository import IdempotencyRepository
from common.logging import get_logger
from common.metrics import REDIS_FAILURES
from common.redis import REDIS_ERRORS

log = get_logger(__name__)

_VALID_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")
REPLAYED_HEADER = "Idempotent-Replayed"


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


def fingerprint(request: Any) -> str:
    """A stable digest of what was asked (the operation and its normalised body)."""
    return hashlib.sha256(orjson.dumps(request, option=orjson.OPT_SORT_KEYS)).hexdigest()


@dataclass(frozen=True, slots=True)
class StoredResponse:
    """A complete response: what a replay sends back, byte for byte."""

    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, response: Response) -> StoredResponse:
        """Everything but the length, which is recomputed when the replay is sent."""
        headers = {k: v for k, v in response.headers.items() if k.lower() != "content-length"}
        return cls(response.status_code, bytes(response.body), headers)

    def replay(self) -> Response:
        headers = {**self.headers, REPLAYED_HEADER: "true"}
        return Response(self.body, status_code=self.status, headers=headers)


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

    async def respond(
        self,
        uow: UnitOfWork,
        user_id: uuid.UUID,
        key: str | None,
        request: Any,
        work: Callable[[], Awaitable[Response]],
    ) -> Response:
        """`work()`'s response, once per (user, key): recorded in `uow`'s transaction the
        first time, replayed (with `Idempotent-Replayed: true`) afterwards. Without a key,
        simply `work()`. `request` identifies what was asked (JSON-serialisable)."""
        if key is None:
            return await work()
        claim = Claim(user_id, _digest(validate_key(key)), fingerprint(request))
        earlier = await self._earlier_response(uow, claim)
        if earlier is not None:
            return earlier.replay()
        response = await work()
        stored = StoredResponse.of(response)
        await IdempotencyRepository(uow.session).put(
            claim.user_id,
            claim.key_digest,
            fingerprint=claim.fingerprint,
            status=stored.status,
            headers=stored.headers,
            body=stored.body,
        )
        uow.after_commit(lambda: self._cache(claim, claim.fingerprint, stored, datetime.now(UTC)))
        return response

    async def _earlier_response(self, uow: UnitOfWork, claim: Claim) -> StoredResponse | None:
        """The response of the request that already used the key (422 if that request had
        another body); None after claiming the key in `uow`'s transaction (409 while another
        request holds it)."""
        cached = await self._cached(claim)
        if cached is not None:
            return _same_request(claim, *cached)
        records = IdempotencyRepository(uow.session)
        if not await records.try_lock(claim.user_id, claim.key_digest):
            raise IdempotentRequestInProgress()
        row = await records.get(claim.user_id, claim.key_digest)
        if row is None or row.created_at <= datetime.now(UTC) - self._ttl:
            return None
        stored = StoredResponse(status=row.status, body=row.body, headers=dict(row.headers))
        earlier = _same_request(claim, row.fingerprint, stored)
        await self._cache(claim, row.fingerprint, stored, row.created_at)
        return earlier

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
        """The fast-path copy in Redis, for what is left of the record's lifetime (best
        effort: never raises)."""
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


def _digest(key: str) -> str:
    """Records keep a digest of the client's key, never the key."""
    return hashlib.sha256(key.encode()).hexdigest()


def _same_request(claim: Claim, stored_fingerprint: str, stored: StoredResponse) -> StoredResponse:
    if stored_fingerprint != claim.fingerprint:
        raise IdempotencyKeyReused(
            "This Idempotency-Key was already used with a different request body"
        )
    return stored
