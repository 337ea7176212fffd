"""Housekeeping jobs: the outbox relay and the purges."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from common import jobstats
from common.jobs import JobName, JobPublisher
from common.logging import get_logger
from common.maintenance.outbox import relay_outbox
from common.maintenance.purge import PurgeReport, purge_expired_rows
from worker.app import app
from worker.runtime import WorkerRuntime, run

log = get_logger(__name__)


@app.task(name=JobName.RELAY_OUTBOX, soft_time_limit=60, time_limit=90)
def relay_outbox_task() -> int:
    return run(lambda rt: relay_outbox(rt.session_factory, JobPublisher(app)))


async def purge(runtime: WorkerRuntime, now: datetime) -> PurgeReport:
    settings = runtime.settings
    report = await purge_expired_rows(
        runtime.session_factory,
        now=now,
        retention=timedelta(days=settings.purge_retention_days),
        batch_size=settings.purge_batch_size,
    )
    log.info("purge_finished", **report.deleted)
    await jobstats.record(runtime.redis, "purged_rows", report.deleted)
    return report


@app.task(name=JobName.PURGE_DELETED, soft_time_limit=240, time_limit=300)
def purge_deleted(now: str | None = None) -> dict[str, int]:
    moment = datetime.fromisoformat(now) if now else datetime.now(UTC)
    return run(lambda rt: purge(rt, moment)).deleted
