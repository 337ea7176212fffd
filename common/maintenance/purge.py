"""Purges: soft-deleted tasks past retention, and expired token and bookkeeping rows.

Each batch is its own short transaction, so a purge never holds long locks, and each batch
selects with SKIP LOCKED, so two purges at once share the work instead of blocking.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, delete, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import InstrumentedAttribute

from common.models import (
    ActionToken,
    IdempotencyKey,
    RefreshToken,
    RefreshTokenFamily,
    SentEmail,
    Task,
)

SENT_EMAIL_RETENTION = timedelta(days=30)


@dataclass
class PurgeReport:
    deleted: dict[str, int] = field(default_factory=dict)

    def add(self, table: str, count: int) -> None:
        self.deleted[table] = self.deleted.get(table, 0) + count


async def _purge_in_batches(
    session_factory: async_sessionmaker[AsyncSession],
    keys: tuple[InstrumentedAttribute[Any], ...],
    condition: ColumnElement[bool],
    batch_size: int,
    max_batches: int,
) -> int:
    """Delete rows matching `condition`, `batch_size` primary keys (`keys`) at a time."""
    table = keys[0].class_
    key = tuple_(*keys) if len(keys) > 1 else keys[0]
    total = 0
    for _ in range(max_batches):
        doomed = select(*keys).where(condition).limit(batch_size).with_for_update(skip_locked=True)
        async with session_factory() as session:
            result = await session.execute(delete(table).where(key.in_(doomed)).returning(keys[0]))
            count = len(result.all())
            await session.commit()
        total += count
        if count < batch_size:
            break
    return total


async def purge_expired_rows(
    session_factory: async_sessionmaker[AsyncSession],
    *,
    now: datetime,
    retention: timedelta,
    batch_size: int,
    idempotency_retention: timedelta = timedelta(days=1),
    max_batches: int = 100,
) -> PurgeReport:
    """Delete what nobody can see or use any more; category links go with their tasks."""
    report = PurgeReport()
    # A session whose refresh tokens have all expired (and been purged) is over.
    finished_family = ~select(RefreshToken.id).where(
        RefreshToken.family_id == RefreshTokenFamily.id
    ).exists() & (RefreshTokenFamily.created_at < now - timedelta(days=1))
    targets: list[tuple[tuple[InstrumentedAttribute[Any], ...], ColumnElement[bool]]] = [
        ((Task.id,), Task.deleted_at < now - retention),
        ((RefreshToken.id,), RefreshToken.expires_at < now),
        ((ActionToken.id,), ActionToken.expires_at < now),
        ((SentEmail.idempotency_key,), SentEmail.attempted_at < now - SENT_EMAIL_RETENTION),
        ((RefreshTokenFamily.id,), finished_family),
        (
            (IdempotencyKey.user_id, IdempotencyKey.key_digest),
            IdempotencyKey.created_at < now - idempotency_retention,
        ),
    ]
    for keys, condition in targets:
        report.add(
            keys[0].class_.__tablename__,
            await _purge_in_batches(session_factory, keys, condition, batch_size, max_batches),
        )
    return report
