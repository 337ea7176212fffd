"""Due-date reminders: the one-minute scan and the digest mail it enqueues."""

from __future__ import annotations

import uuid
from datetime import datetime

from common import jobstats
from common.jobs import JobName
from common.reminders.service import ReminderService
from worker.mail.delivery import deliver_once
from worker.mail.messages import digest_mail
from worker.mail.tasks import mail_task
from worker.policy import job
from worker.runtime import WorkerRuntime
from worker.tasks.arguments import as_of


async def scan(runtime: WorkerRuntime, now: datetime) -> int:
    async with runtime.unit_of_work() as uow:
        batches = await ReminderService(uow, runtime.settings).claim_due(now)
    claimed = sum(len(batch.task_ids) for batch in batches)
    if claimed:
        await jobstats.record(runtime.redis, "reminders", {"claimed": claimed})
    return claimed


@job(JobName.SCAN_DUE_REMINDERS, soft_time_limit=50, time_limit=60)
async def scan_due_reminders(runtime: WorkerRuntime, now: str | None = None) -> int:
    """`now` lets an operator (or a test) run the scan as of a given instant."""
    return await scan(runtime, as_of(now))


@mail_task(JobName.SEND_DUE_REMINDERS)
async def send_due_reminders(
    runtime: WorkerRuntime, batch_id: str, user_id: str, task_ids: list[str]
) -> bool:
    """One user's digest, with what is still worth reminding when it goes out."""
    async with runtime.unit_of_work() as uow:
        digest = await ReminderService(uow, runtime.settings).digest(
            uuid.UUID(batch_id), uuid.UUID(user_id), [uuid.UUID(t) for t in task_ids]
        )
    return digest is not None and await deliver_once(runtime, digest_mail(digest))
