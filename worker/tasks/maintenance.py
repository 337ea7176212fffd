"""Housekeeping jobs: the outbox relay and the purges."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, select

from common.jobs import Job, JobName, JobPublisher
from common.logging import get_logger
from common.maintenance.purge import PurgeReport, purge_expired_rows
from common.models import OutboxJob
from worker.app import app
from worker.runtime import WorkerRuntime, run

log = get_logger(__name__)

RELAY_GRACE_SECONDS = 30
RELAY_BATCH = 500


async def relay_outbox(runtime: WorkerRuntime, publisher: JobPublisher) -> int:
    """Publish jobs the API could not hand to the broker (it was down), oldest first.

    Rows younger than the grace period are left to the API, which publishes right after its
    commit; SKIP LOCKED lets two relays run at once without sending a job twice.
    """
    cutoff = datetime.now(UTC) - timedelta(seconds=RELAY_GRACE_SECONDS)
    async with runtime.session_factory() as session:
        rows = (
            (
                await session.execute(
                    select(OutboxJob)
                    .where(OutboxJob.created_at < cutoff)
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
                task_name=r.task_name,
                queue=r.queue,
                kwargs=r.kwargs,
                id=r.id,
                request_id=r.request_id,
            )
            for r in rows
        ]
        sent = publisher.publish_many(jobs)
        if sent:
            await session.execute(delete(OutboxJob).where(OutboxJob.id.in_(sent)))
        await session.commit()
    if jobs:
        log.info("outbox_relayed", pending=len(jobs), sent=len(sent))
    return len(sent)


@app.task(name=JobName.RELAY_OUTBOX, soft_time_limit=60, time_limit=90)
def relay_outbox_task() -> int:
    return run(lambda rt: relay_outbox(rt, JobPublisher(app)))


async def purge(runtime: WorkerRuntime, now: datetime) -> PurgeReport:
    settings = runtime.settings
    report = await purge_expired_rows(
        runtime.session_factory,
        now=now,
        retention=timedelta(days=settings.purge_retention_days),
        batch_size=settings.purge_batch_size,
    )
    log.info("purge_finished", **report.deleted)
    return report


@app.task(name=JobName.PURGE_DELETED, soft_time_limit=240, time_limit=300)
def purge_deleted(now: str | None = None) -> dict[str, int]:
    moment = datetime.fromisoformat(now) if now else datetime.now(UTC)
    return run(lambda rt: purge(rt, moment)).deleted
