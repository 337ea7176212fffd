"""Purges: soft-deleted tasks past retention, change-feed tombstones as old, and expired token
and bookkeeping rows.

Each batch is its own short unit of work, so a purge never holds long locks, and each batch
selects with SKIP LOCKED, so two purges at once share the work instead of blocking. Tombstones
are purged after the tasks with the same retention: a client offline longer than that gets a
410 from the feed and resyncs (`common.sync`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from common.db.uow import UnitOfWork
from common.maintenance.repository import Expired, delete_batch, expired_rows
from common.sync.repository import ChangeFeedRepository


async def purge_expired_rows(
    units: Callable[[], UnitOfWork],
    *,
    now: datetime,
    retention: timedelta,
    batch_size: int,
    idempotency_retention: timedelta = timedelta(days=1),
    activity_retention: timedelta = timedelta(days=90),
    max_batches: int = 100,
) -> dict[str, int]:
    """Delete what nobody can see or use any more, `batch_size` rows per transaction (a
    new unit of work from `units()` each), at most `max_batches` per table; returns the
    number of rows deleted by table."""

    async def in_batches(delete_one: Callable[[UnitOfWork], Awaitable[int]]) -> int:
        total = 0
        for _ in range(max_batches):
            async with units() as uow:
                count = await delete_one(uow)
            total += count
            if count < batch_size:
                break
        return total

    def rows_of(expired: Expired) -> Callable[[UnitOfWork], Awaitable[int]]:
        return lambda uow: delete_batch(uow.session, expired, batch_size)

    async def tombstones(uow: UnitOfWork) -> int:
        return await ChangeFeedRepository(uow.session).purge_tombstones(now - retention, batch_size)

    deleted: dict[str, int] = {}
    for expired in expired_rows(
        now,
        retention=retention,
        idempotency_retention=idempotency_retention,
        activity_retention=activity_retention,
    ):
        deleted[expired.table] = await in_batches(rows_of(expired))
    deleted["change_feed"] = await in_batches(tombstones)
    return deleted
