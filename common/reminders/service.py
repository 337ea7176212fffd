"""Due-date reminders: claim what is due atomically, then mail each user one digest.

Reminders are rows in PostgreSQL, claimed by a one-minute beat scan, never long-countdown
Celery tasks (on a Redis broker those are redelivered again and again once the countdown passes
the visibility timeout). The claim sets `reminder_sent_at` with `FOR UPDATE SKIP LOCKED`, and the
mail job goes into the outbox in the same transaction, so two racing scans claim each task once
and a crash between claim and publish loses nothing. One scan claims at a time (a transaction
advisory lock; a second beat's scan finds it held and claims nothing): row locks alone let two
scans split one user's tasks between them, and the user would get two digests.

Only verified addresses get reminders: anyone can register with a stranger's address, and
task titles are theirs to choose. Each digest takes one mail of the address's daily allowance
and one digest of its hourly one (`common.security.mail_quota`), reserved in the claim's
transaction; a user without allowance left keeps their tasks unclaimed until it returns (a
later digest then carries them all, within the catch-up horizon), and does not take the
batch's places from anyone else.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from common.config import Settings
from common.db.uow import UnitOfWork
from common.jobs import JobName, Queue
from common.logging import get_logger
from common.reminders.repository import ReminderRepository
from common.security.mail_quota import MailKind, reserve_mails
from common.users.repository import UserRepository

log = get_logger(__name__)

# After downtime the scan catches up on reminders that came due while it was away, but a task
# whose due date passed more than this long ago gets no reminder: it would only be noise.
CATCH_UP_HORIZON = timedelta(days=1)
CLAIM_BATCH = 1000
DUE_FORMAT = "%a %d %b %Y, %H:%M"


@dataclass(frozen=True, slots=True)
class ReminderBatch:
    batch_id: uuid.UUID
    user_id: uuid.UUID
    task_ids: list[uuid.UUID]


@dataclass(frozen=True, slots=True)
class DigestTask:
    title: str
    priority: str
    due_local: str
    """The due date in the user's time zone, as the mail shows it."""
    link: str


@dataclass(frozen=True, slots=True)
class Digest:
    """One user's reminder mail, ready to render."""

    batch_id: uuid.UUID
    address: str
    full_name: str
    time_zone: str
    minutes_before: int
    tasks: list[DigestTask]


class ReminderService:
    def __init__(self, uow: UnitOfWork, settings: Settings) -> None:
        self._uow = uow
        self._settings = settings
        self._reminders = ReminderRepository(uow.session)

    async def claim_due(self, now: datetime, *, limit: int = CLAIM_BATCH) -> list[ReminderBatch]:
        """Claim up to `limit` due, unreminded, live tasks of verified users with mail
        allowance left, and enqueue one digest job per user; nothing while another scan is
        claiming."""
        if not await self._reminders.lock_scan():
            log.info("reminder_scan_skipped", reason="another scan is claiming")
            return []
        due = await self._reminders.lock_due(
            now, catch_up=CATCH_UP_HORIZON, limit=limit, settings=self._settings
        )
        by_user: dict[uuid.UUID, list[uuid.UUID]] = defaultdict(list)
        addresses: dict[uuid.UUID, str] = {}
        for task_id, user_id, email in due:
            by_user[user_id].append(task_id)
            addresses[user_id] = email
        granted = await reserve_mails(
            self._uow.session, self._settings, addresses.values(), now=now, kind=MailKind.DIGEST
        )
        batches = [
            ReminderBatch(batch_id=uuid.uuid4(), user_id=user_id, task_ids=sorted(task_ids))
            for user_id, task_ids in by_user.items()
            if addresses[user_id] in granted
        ]
        if batches:
            claimed = [task_id for batch in batches for task_id in batch.task_ids]
            await self._reminders.mark_reminded(claimed, now)
            log.info("reminders_claimed", tasks=len(claimed), users=len(batches))
        for batch in batches:
            self._uow.enqueue(
                JobName.SEND_DUE_REMINDERS,
                Queue.EMAIL,
                batch_id=str(batch.batch_id),
                user_id=str(batch.user_id),
                task_ids=[str(task_id) for task_id in batch.task_ids],
            )
        return batches

    async def digest(
        self, batch_id: uuid.UUID, user_id: uuid.UUID, task_ids: list[uuid.UUID]
    ) -> Digest | None:
        """The batch's mail, with the tasks that are still live and open now that it is about
        to go out, for a user who still wants reminders at a verified address (checked again
        at send time: a job may have been enqueued by an older release, or replayed from the
        outbox); None when nothing is left to remind."""
        user = await UserRepository(self._uow.session).get(user_id)
        if user is None or user.reminder_minutes_before == 0 or user.email_verified_at is None:
            return None
        tasks = await self._reminders.open_tasks(user_id, task_ids)
        if not tasks:
            return None
        zone = ZoneInfo(user.timezone)
        return Digest(
            batch_id=batch_id,
            address=user.email,
            full_name=user.full_name,
            time_zone=user.timezone,
            minutes_before=user.reminder_minutes_before,
            tasks=[
                DigestTask(
                    title=task.title,
                    priority=task.priority.value,
                    due_local=task.due_date.astimezone(zone).strftime(DUE_FORMAT)
                    if task.due_date
                    else "",
                    link=f"{self._settings.public_url}/api/v1/tasks/{task.id}",
                )
                for task in tasks
            ],
        )
