"""The outbox relay: publish jobs the API could not hand to the broker when it committed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from common.jobs import Job, JobPublisher
from common.logging import get_logger
from common.models import OutboxJob

log = get_logger(__name__)

# Rows younger than this belong to a request that is publishing them right now.
RELAY_GRACE = timedelta(seconds=30)
RELAY_BATCH = 500


async def relay_outbox(
    session_factory: async_sessionmaker[AsyncSession],
    publisher: JobPublisher,
    *,
    grace: timedelta = RELAY_GRACE,
) -> int:
    """Publish stranded jobs oldest first; SKIP LOCKED lets two relays share the work."""
    cutoff = datetime.now(UTC) - grace
    async with session_factory() as session:
        rows = (
            (
                await session.execute(
                    select(OutboxJob)
                    .where(OutboxJob.created_at <= cutoff)
                    .order_by(OutboxJob.created_at)
                    .limit(RELAY_BATCH)
                    .with_for_update(skip_locked=True)
                )
            )
            .scalars()
            .all()
        )
        jobs = [
            Job(
                task_name=row.task_name,
                queue=row.queue,
                kwargs=row.kwargs,
                id=row.id,
                request_id=row.request_id,
            )
            for row in rows
        ]
        sent = await publisher.publish_many_async(jobs)
        if sent:
            await session.execute(delete(OutboxJob).where(OutboxJob.id.in_(sent)))
        await session.commit()
    if jobs:
        log.info("outbox_relayed", pending=len(jobs), sent=len(sent))
    return len(sent)
