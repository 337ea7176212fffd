"""Idempotency-Key support for creates: a retried request returns the first response.

One Redis key per (user, Idempotency-Key) holds either a short-lived "processing" marker (set
with NX, so of two concurrent duplicates exactly one proceeds) or, once the request succeeded,
the fingerprint of its body with the status and body of its response, for
`idempotency_ttl_seconds`. The same key with a different body is refused (422); a duplicate that
arrives while the first is still running gets 409 and may retry. Failures release the marker,
so a request that failed can be retried with the same key.

When Redis is unavailable requests proceed without the guarantee (logged and counted): losing
deduplication for a moment is better than refusing every create.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import uuid
from dataclasses import dataclass
from typing import Any

import orjson
from redis.asyncio import Redis

from common.errors import AppError, Conflict, InvalidInput
from common.logging import get_logger
from common.metrics import REDIS_FAILURES
from common.redis import REDIS_ERRORS

log = get_logger(__name__)

PROCESSING_TTL_SECONDS = 60
_VALID_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")

# Delete the marker only if it is still ours (it may have expired and been re-claimed).
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


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
    status: int
    body: bytes


@dataclass(frozen=True, slots=True)
class Claim:
    """The right to perform the request once; inactive when Redis could not be asked."""

    redis_key: str
    fingerprint: str
    marker: bytes
    active: bool


class IdempotencyStore:
    def __init__(
        self,
        redis: Redis,
        *,
        ttl_seconds: int,
        processing_ttl_seconds: int = PROCESSING_TTL_SECONDS,
    ) -> None:
        self._redis = redis
        self._ttl = ttl_seconds
        self._processing_ttl = processing_ttl_seconds
        self._release = redis.register_script(_RELEASE)

    async def begin(
        self, user_id: uuid.UUID, key: str, request_fingerprint: str
    ) -> Claim | StoredResponse:
        """Claim the key, or return the stored response of the request that already used it."""
        digest = hashlib.sha256(key.encode()).hexdigest()
        redis_key = f"idem:{{{user_id}}}:{digest}"
        marker = orjson.dumps(
            {"state": "processing", "fp": request_fingerprint, "token": secrets.token_hex(8)}
        )
        try:
            if await self._redis.set(redis_key, marker, nx=True, ex=self._processing_ttl):
                return Claim(redis_key, request_fingerprint, marker, active=True)
            existing = await self._redis.get(redis_key)
        except REDIS_ERRORS as exc:
            self._failed("begin", exc)
            return Claim(redis_key, request_fingerprint, marker, active=False)
        if existing is None:  # the first request failed or expired a moment ago
            raise IdempotentRequestInProgress()
        record = orjson.loads(existing)
        if record.get("fp") != request_fingerprint:
            raise IdempotencyKeyReused(
                "This Idempotency-Key was already used with a different request body"
            )
        if record.get("state") != "done":
            raise IdempotentRequestInProgress()
        return StoredResponse(status=int(record["status"]), body=str(record["body"]).encode())

    async def complete(self, claim: Claim, status: int, body: bytes) -> None:
        """Remember the response; later duplicates replay it."""
        if not claim.active:
            return
        record = orjson.dumps(
            {"state": "done", "fp": claim.fingerprint, "status": status, "body": body.decode()}
        )
        try:
            await self._redis.set(claim.redis_key, record, ex=self._ttl)
        except REDIS_ERRORS as exc:
            self._failed("complete", exc)

    async def release(self, claim: Claim) -> None:
        """Give the key back after a failure, so the client may retry with it."""
        if not claim.active:
            return
        try:
            await self._release(keys=[claim.redis_key], args=[claim.marker])
        except REDIS_ERRORS as exc:
            self._failed("release", exc)

    @staticmethod
    def _failed(step: str, exc: BaseException) -> None:
        REDIS_FAILURES.labels(operation="idempotency").inc()
        log.warning("idempotency_unavailable", step=step, error=repr(exc))
