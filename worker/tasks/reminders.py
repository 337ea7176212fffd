"""Due-date reminders: the one-minute scan and the digest mail it enqueues."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from common import jobstats
from common.db.uow import UnitOfWork
from common.jobs import JobName, JobPublisher
from common.logging import get_logger
from common.reminders.service import claim_due_reminders, tasks_still_worth_reminding
from worker.app import app
from worker.mail.delivery import deliver_once
from worker.mail.render import render_mail
from worker.mail.tasks import mail_task
from worker.policy import job
from worker.runtime import WorkerRuntime

log = get_logger(__name__)


async def scan(runtime: WorkerRuntime, now: datetime) -> int:
    async with runtime.session_factory() as session:
        batches = await claim_due_reminders(UnitOfWork(session, JobPublisher(app)), now)
    claimed = sum(len(batch.task_ids) for batch in batches)
    if claimed:
        log.info("reminders_claimed", tasks=claimed, users=len(batches))
        await jobstats.record(runtime.redis, "reminders", {"claimed": claimed})
    return claimed


async def send_digest(
    runtime: WorkerRuntime, batch_id: str, user_id: str, task_ids: list[str]
) -> bool:
    settings = runtime.settings
    async with runtime.session_factory() as session:
        uow = UnitOfWork(session, JobPublisher(app))
        user, tasks = await tasks_still_worth_reminding(
            uow, uuid.UUID(user_id), [uuid.UUID(t) for t in task_ids]
        )
    if user is None or not tasks:
        log.info("reminder_skipped", batch_id=batch_id, reason="nothing left to remind")
        return False
    zone = ZoneInfo(user.timezone)
    mail = render_mail(
        "due_reminder",
        full_name=user.full_name,
        time_zone=user.timezone,
        minutes_before=user.reminder_minutes_before,
        tasks=[
            {
                "title": task.title,
                "priority": task.priority.value,
                "due_local": task.due_date.astimezone(zone).strftime("%a %d %b %Y, %H:%M")
                if task.due_date
                else "",
                "link": f"{settings.public_url}/api/v1/tasks/{task.id}",
            }
            for task in tasks
        ],
    )
    sent = await deliver_once(
        runtime, idempotency_key=f"reminder:{batch_id}", to=user.email, mail=mail
    )
    if sent:
        await jobstats.record(runtime.redis, "mails", {"due_reminder": 1})
    return sent


@job(JobName.SCAN_DUE_REMINDERS, soft_time_limit=50, time_limit=60)
async def scan_due_reminders(runtime: WorkerRuntime, now: str | None = None) -> int:
    """`now` lets an operator (or a test) run the scan as of a given instant."""
    return await scan(runtime, datetime.fromisoformat(now) if now else datetime.now(UTC))


@mail_task(JobName.SEND_DUE_REMINDERS)
async def send_due_reminders(
    runtime: WorkerRuntime, batch_id: str, user_id: str, task_ids: list[str]
) -> bool:
    return await send_digest(runtime, batch_id, user_id, task_ids)
