"""How long the deliveries log is kept, and the purge that keeps it so."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from common.db.uow import UnitOfWork
from common.webhooks.repository import WebhookRepository

DELIVERY_RETENTION = timedelta(days=14)
"""Long past the day of retries; what an owner needs to see why their endpoint failed."""


async def purge_old_deliveries(
    unit_of_work: Callable[[], UnitOfWork], *, now: datetime, batch_size: int
) -> int:
    """Delete deliveries (and their attempts) older than the retention, one bounded batch per
    transaction, so a long backlog never holds locks for long."""
    purged = 0
    while True:
        async with unit_of_work() as uow:
            deleted = await WebhookRepository(uow.session).purge_deliveries(
                before=now - DELIVERY_RETENTION, limit=batch_size
            )
        purged += deleted
        if deleted < batch_size:
            return purged
