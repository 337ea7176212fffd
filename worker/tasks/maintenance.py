"""Housekeeping jobs: the outbox relay and the purges."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from common import jobstats
from common.jobs import JobName, JobPublisher
from common.logging import get_logger
from common.maintenance.outbox import relay_outbox
from common.maintenance.purge import PurgeReport, purge_expired_rows
from worker.app import app
from worker.policy import job
from worker.runtime import WorkerRuntime

log = get_logger(__name__)


@job(JobName.RELAY_OUTBOX, soft_time_limit=60, time_limit=90)
async def relay_outbox_task(runtime: WorkerRuntime) -> int:
    return await relay_outbox(runtime.session_factory, JobPublisher(app))


async def purge(runtime: WorkerRuntime, now: datetime) -> PurgeReport:
    settings = runtime.settings
    report = await purge_expired_rows(
        runtime.session_factory,
        now=now,
        retention=timedelta(days=settings.purge_retention_days),
        batch_size=settings.purge_batch_size,
        idempotency_retention=timedelta(seconds=settings.idempotency_ttl_seconds),
    )
    log.info("purge_finished", **report.deleted)
    await jobstats.record(runtime.redis, "purged_rows", report.deleted)
    return report


@job(JobName.PURGE_DELETED, soft_time_limit=150, time_limit=180)
async def purge_deleted(runtime: WorkerRuntime, now: str | None = None) -> dict[str, int]:
    """Bounded batches: a purge cut short by its time limit goes on at the next run."""
    moment = datetime.fromisoformat(now) if now else datetime.now(UTC)
    return (await purge(runtime, moment)).deleted
