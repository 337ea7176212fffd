"""Data exports: the job that builds one, and the mail that says it is ready."""

from __future__ import annotations

import uuid

from common.accounts.exports import ExportService, build_export
from common.jobs import JobName
from common.models import ExportStatus
from worker.mail.delivery import deliver_once
from worker.mail.messages import export_mail
from worker.mail.tasks import mail_task
from worker.policy import job
from worker.runtime import WorkerRuntime


@job(JobName.BUILD_EXPORT, soft_time_limit=150, time_limit=180)
async def build_account_export(runtime: WorkerRuntime, export_id: str) -> str | None:
    """Safe to run again after any crash: it rebuilds an unfinished export from scratch."""
    status = await build_export(runtime.unit_of_work, runtime.settings, uuid.UUID(export_id))
    return status.value if isinstance(status, ExportStatus) else None


@mail_task(JobName.SEND_EXPORT_READY)
async def send_export_ready(runtime: WorkerRuntime, export_id: str) -> bool:
    async with runtime.unit_of_work() as uow:
        ready = await ExportService(uow, runtime.settings).to_mail(uuid.UUID(export_id))
    return ready is not None and await deliver_once(runtime, export_mail(ready))
