"""Due-date reminders: claim what is due atomically, then mail each user one digest.

Reminders are rows in PostgreSQL, claimed by a one-minute beat scan, never long-countdown
Celery tasks (on a Redis broker those are redelivered again and again once the countdown passes
the visibility timeout). The claim sets `reminder_sent_at` with `FOR UPDATE SKIP LOCKED`, and the
mail job goes into the outbox in the same transaction, so two racing scans claim each task once
and a crash between claim and publish loses nothing.

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

from sqlalchemy import func, select, update

from common.config import Settings, get_settings
from common.db.uow import UnitOfWork
from common.jobs import JobName, Queue
from common.models import Task, TaskStatus, User
from common.security.mail_quota import MailKind, digest_allowance_left, reserve_mails

# After downtime the scan catches up on reminders that came due while it was away, but a task
# whose due date passed more than this long ago gets no reminder: it would only be noise.
CATCH_UP_HORIZON = timedelta(days=1)
CLAIM_BATCH = 1000
REMINDABLE = (TaskStatus.PENDING, TaskStatus.IN_PROGRESS)


@dataclass(frozen=True, slots=True)
class ReminderBatch:
    batch_id: uuid.UUID
    user_id: uuid.UUID
    task_ids: list[uuid.UUID]


async def claim_due_reminders(
    uow: UnitOfWork, now: datetime, settings: Settings | None = None
) -> list[ReminderBatch]:
    """Claim every due, unreminded, live task of verified users with mail allowance left,
    and enqueue one digest job per user."""
    settings = settings or get_settings()
    lead_time = func.make_interval(0, 0, 0, 0, 0, User.reminder_minutes_before)
    due = await uow.session.execute(
        select(Task.id, Task.user_id, User.email)
        .join(User, User.id == Task.user_id)
        .where(
            Task.reminder_sent_at.is_(None),
            Task.deleted_at.is_(None),
            Task.due_date.is_not(None),
            Task.status.in_(REMINDABLE),
            User.email_verified_at.is_not(None),
            User.reminder_minutes_before > 0,
            Task.due_date > now - CATCH_UP_HORIZON,
            Task.due_date <= now + lead_time,
            digest_allowance_left(User.email, settings, now),
        )
        .order_by(Task.due_date)
        .limit(CLAIM_BATCH)
        .with_for_update(of=Task, skip_locked=True)
    )
    by_user: dict[uuid.UUID, list[uuid.UUID]] = defaultdict(list)
    addresses: dict[uuid.UUID, str] = {}
    for task_id, user_id, email in due:
        by_user[user_id].append(task_id)
        addresses[user_id] = email
    granted = await reserve_mails(
        uow.session, settings, addresses.values(), now=now, kind=MailKind.DIGEST
    )
    batches = [
        ReminderBatch(batch_id=uuid.uuid4(), user_id=user_id, task_ids=sorted(task_ids))
        for user_id, task_ids in by_user.items()
        if addresses[user_id] in granted
    ]
    if batches:
        await uow.session.execute(
            update(Task)
            .where(Task.id.in_([task_id for batch in batches for task_id in batch.task_ids]))
            # updated_at keeps its value: a reminder is not an edit of the task.
            .values(reminder_sent_at=now, updated_at=Task.updated_at)
        )
    for batch in batches:
        uow.enqueue(
            JobName.SEND_DUE_REMINDERS,
            Queue.EMAIL,
            batch_id=str(batch.batch_id),
            user_id=str(batch.user_id),
            task_ids=[str(task_id) for task_id in batch.task_ids],
        )
    await uow.commit()
    return batches


async def tasks_still_worth_reminding(
    uow: UnitOfWork, user_id: uuid.UUID, task_ids: list[uuid.UUID]
) -> tuple[User | None, list[Task]]:
    """The batch's tasks that are still live and open when the mail is about to go out, for
    a user who still wants reminders at a verified address (checked again at send time: a job
    may have been enqueued by an older release, or replayed from the outbox)."""
    user = await uow.session.get(User, user_id)
    if user is None or user.reminder_minutes_before == 0 or user.email_verified_at is None:
        return user, []
    tasks = (
        await uow.session.execute(
            select(Task)
            .where(
                Task.id.in_(task_ids),
                Task.user_id == user_id,
                Task.deleted_at.is_(None),
                Task.status.in_(REMINDABLE),
            )
            .order_by(Task.due_date, Task.id)
        )
    ).scalars()
    return user, list(tasks)
