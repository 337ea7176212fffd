"""Purges: soft-deleted tasks past retention, and expired token and bookkeeping rows.

Each batch is its own short unit of work, so a purge never holds long locks, and each batch
selects with SKIP LOCKED, so two purges at once share the work instead of blocking.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from common.db.uow import UnitOfWork
from common.maintenance.repository import delete_batch, expired_rows


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
    deleted: dict[str, int] = {}
    for expired in expired_rows(
        now,
        retention=retention,
        idempotency_retention=idempotency_retention,
        activity_retention=activity_retention,
    ):
        total = 0
        for _ in range(max_batches):
            async with units() as uow:
                count = await delete_batch(uow.session, expired, batch_size)
            total += count
            if count < batch_size:
                break
        deleted[expired.table] = total
    return deleted
