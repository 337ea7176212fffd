"""The outbox relay: publish the jobs that are due again.

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

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from common.db.outbox import MAX_PUBLISHES, OutboxRepository
from common.db.uow import UnitOfWork
from common.jobs import JobPublisher
from common.logging import get_logger

log = get_logger(__name__)

RELAY_BATCH = 500


async def relay_outbox(
    session_factory: async_sessionmaker[AsyncSession], publisher: JobPublisher
) -> int:
    """Publish due jobs oldest first, holding their rows until they are marked published."""
    async with UnitOfWork(session_factory(), publisher) as uow:
        outbox = OutboxRepository(uow.session)
        due = await outbox.lock_due(limit=RELAY_BATCH, max_publishes=MAX_PUBLISHES)
        sent = await publisher.publish_many_async([job for job, _ in due])
        published = set(sent)
        republished = sum(1 for job, count in due if count > 0 and job.id in published)
        if sent:
            await outbox.published(sent, publisher.redeliver_after)
    if due:
        log.info("outbox_relayed", due=len(due), sent=len(sent), republished=republished)
    return len(sent)
