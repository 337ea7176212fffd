"""The outbox relay: publish the jobs that are due again; and what an operator needs to know
about the outbox.

A row is due when its post-commit publish failed (broker down), when its job has not finished
`redeliver_after` after the last publish (the message was lost, e.g. by a Redis restart that
dropped every queued message), or when a retry reaches the time the job set (`worker.policy`).
Publishing a job whose message was only slow gives a duplicate, which the job's idempotency
key absorbs.

Rows live until their job finished, so their number is the jobs in flight, and a long retry
makes an old row: neither says anything is wrong. What does: a row due for longer than a
couple of relay rounds (the relay, beat or the broker is failing), and a parked one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import extract, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, async_sessionmaker

from common.jobs import Job, JobPublisher
from common.logging import get_logger
from common.models import OutboxJob

log = get_logger(__name__)

RELAY_BATCH = 500
MAX_PUBLISHES = 20
"""A job published this often without finishing (it kills its worker every time) is parked:
left in the table for an operator instead of being published forever. A job that failed for
good under a policy that keeps it (mails) is parked the same way (`worker.policy`)."""
OVERDUE_GRACE = timedelta(seconds=60)
"""Two rounds of the relay (beat runs it every 30 s): a row due longer ago is overdue."""


@dataclass(frozen=True, slots=True)
class OutboxState:
    unfinished: int
    """Jobs committed and not finished: queued, running or waiting for a retry."""
    overdue: int
    """Jobs due for the relay more than `OVERDUE_GRACE` ago and not published since."""
    oldest_overdue_seconds: float
    """How long the longest-overdue job has been due (0 when none is)."""
    parked: int
    """Jobs the relay no longer publishes: an operator's (docs/operations.md)."""


async def outbox_state(connection: AsyncConnection | AsyncSession) -> OutboxState:
    """One pass over the table (it holds the jobs in flight: small)."""
    parked = OutboxJob.publish_count >= MAX_PUBLISHES
    overdue = (OutboxJob.due_at < func.now() - OVERDUE_GRACE) & ~parked
    row = (
        await connection.execute(
            select(
                func.count(),
                func.count().filter(overdue),
                func.max(extract("epoch", func.now() - OutboxJob.due_at)).filter(overdue),
                func.count().filter(parked),
            ).select_from(OutboxJob)
        )
    ).one()
    return OutboxState(
        unfinished=int(row[0]),
        overdue=int(row[1]),
        oldest_overdue_seconds=float(row[2] or 0.0),
        parked=int(row[3]),
    )


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
