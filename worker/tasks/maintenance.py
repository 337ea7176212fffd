"""Housekeeping jobs: the outbox relay and the purges."""

from __future__ import annotations

from datetime import datetime, timedelta

from common import jobstats
from common.jobs import JobName
from common.logging import get_logger
from common.maintenance.outbox import relay_outbox
from common.maintenance.purge import purge_expired_rows
from worker.policy import job
from worker.runtime import WorkerRuntime
from worker.tasks.arguments import as_of

log = get_logger(__name__)


@job(JobName.RELAY_OUTBOX, soft_time_limit=60, time_limit=90)
async def relay_outbox_task(runtime: WorkerRuntime) -> int:
    return await relay_outbox(runtime.session_factory, runtime.publisher)


async def purge(runtime: WorkerRuntime, now: datetime) -> dict[str, int]:
    settings = runtime.settings
    deleted = await purge_expired_rows(
        runtime.unit_of_work,
        now=now,
        retention=timedelta(days=settings.purge_retention_days),
        batch_size=settings.purge_batch_size,
        idempotency_retention=timedelta(seconds=settings.idempotency_ttl_seconds),
        activity_retention=timedelta(days=settings.activity_retention_days),
    )
    log.info("purge_finished", **deleted)
    await jobstats.record(runtime.redis, "purged_rows", deleted)
    return deleted


@job(JobName.PURGE_DELETED, soft_time_limit=150, time_limit=180)
async def purge_deleted(runtime: WorkerRuntime, now: str | None = None) -> dict[str, int]:
    """Bounded batches: a purge cut short by its time limit goes on at the next run."""
    return await purge(runtime, as_of(now))
