"""SQL for idempotency records: the first response to a keyed request, per user and key."""

from __future__ import annotations

import uuid

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from common.models import IdempotencyKey


class IdempotencyRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def try_lock(self, user_id: uuid.UUID, key_digest: str) -> bool:
        """A transaction-scoped advisory lock on (user, key); False while another holds it."""
        lock = func.hashtextextended(f"{user_id}:{key_digest}", 0)
        return bool(await self._session.scalar(select(func.pg_try_advisory_xact_lock(lock))))

    async def get(self, user_id: uuid.UUID, key_digest: str) -> IdempotencyKey | None:
        return await self._session.get(IdempotencyKey, (user_id, key_digest))

    async def put(
        self,
        user_id: uuid.UUID,
        key_digest: str,
        *,
        fingerprint: str,
        status: int,
        headers: dict[str, str],
        body: bytes,
    ) -> None:
        """Insert the record, or replace an expired one of the same user and key."""
        values = {
            "user_id": user_id,
            "key_digest": key_digest,
            "fingerprint": fingerprint,
            "status": status,
            "headers": headers,
            "body": body,
            "created_at": func.now(),
        }
        statement = insert(IdempotencyKey).values(values)
        await self._session.execute(
            statement.on_conflict_do_update(
                index_elements=[IdempotencyKey.user_id, IdempotencyKey.key_digest],
                set_={name: statement.excluded[name] for name in values if name != "user_id"},
            )
        )
