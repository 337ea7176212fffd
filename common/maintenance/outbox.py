"""The outbox relay: publish the jobs that are due again.

A row is due when its post-commit publish failed (broker down), when its job has not finished
`redeliver_after` after the last publish (the message was lost, e.g. by a Redis restart that
dropped every queued message), or when a retry the job handed back reaches its not-before
time. Publishing a job whose message was only slow gives a duplicate, which the job's
idempotency key absorbs.
"""

from __future__ import annotations

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from common.jobs import Job, JobPublisher
from common.logging import get_logger
from common.models import OutboxJob

log = get_logger(__name__)

RELAY_BATCH = 500
MAX_PUBLISHES = 20
"""A job published this often without finishing (it kills its worker every time) is left in
the table for an operator instead of being published forever."""


async def relay_outbox(
    session_factory: async_sessionmaker[AsyncSession], publisher: JobPublisher
) -> int:
    """Publish due jobs oldest first; SKIP LOCKED lets two relays share the work."""
    async with session_factory() as session:
        rows = (
            (
                await session.execute(
                    select(OutboxJob)
                    .where(OutboxJob.due_at <= func.now(), OutboxJob.publish_count < MAX_PUBLISHES)
                    .order_by(OutboxJob.due_at)
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
                retries=row.retries,
            )
            for row in rows
        ]
        sent = await publisher.publish_many_async(jobs)
        published = set(sent)
        republished = sum(1 for row in rows if row.publish_count > 0 and row.id in published)
        if sent:
            await session.execute(
                update(OutboxJob)
                .where(OutboxJob.id.in_(sent))
                .values(
                    due_at=func.now() + publisher.redeliver_after,
                    publish_count=OutboxJob.publish_count + 1,
                )
            )
        await session.commit()
    if jobs:
        log.info("outbox_relayed", due=len(jobs), sent=len(sent), republished=republished)
    return len(sent)
