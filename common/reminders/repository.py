"""SQL for due-date reminders: finding and claiming due tasks, and re-reading a batch."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from common.config import Settings
from common.models import OPEN_STATUSES, Task, User
from common.security.mail_quota import digest_allowance_left


class ReminderRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def lock_scan(self) -> bool:
        """Take the scan's lock until the commit; False if another scan holds it."""
        key = func.hashtextextended("reminders:scan", 0)
        return bool(await self._session.scalar(select(func.pg_try_advisory_xact_lock(key))))

    async def lock_due(
        self, now: datetime, *, catch_up: timedelta, limit: int, settings: Settings
    ) -> Sequence[tuple[uuid.UUID, uuid.UUID, str]]:
        """(task id, user id, address) of due, unreminded, open, live tasks of verified users
        who want reminders and have digest allowance left, earliest first; the task rows are
        locked, and rows another scan holds are skipped."""
        lead_time = func.make_interval(0, 0, 0, 0, 0, User.reminder_minutes_before)
        rows = await self._session.execute(
            select(Task.id, Task.user_id, User.email)
            .join(User, User.id == Task.user_id)
            .where(
                Task.reminder_sent_at.is_(None),
                Task.deleted_at.is_(None),
                Task.due_date.is_not(None),
                Task.status.in_(OPEN_STATUSES),
                User.email_verified_at.is_not(None),
                User.reminder_minutes_before > 0,
                Task.due_date > now - catch_up,
                Task.due_date <= now + lead_time,
                digest_allowance_left(User.email, settings, now),
            )
            .order_by(Task.due_date)
            .limit(limit)
            .with_for_update(of=Task, skip_locked=True)
        )
        return [(task_id, user_id, email) for task_id, user_id, email in rows]

    async def mark_reminded(self, task_ids: Sequence[uuid.UUID], now: datetime) -> None:
        await self._session.execute(
            update(Task)
            .where(Task.id.in_(task_ids))
            # updated_at keeps its value: a reminder is not an edit of the task.
            .values(reminder_sent_at=now, updated_at=Task.updated_at)
        )

    async def open_tasks(self, user_id: uuid.UUID, task_ids: Sequence[uuid.UUID]) -> list[Task]:
        """The user's tasks among `task_ids` that are still live and open, by due date."""
        tasks = await self._session.execute(
            select(Task)
            .where(
                Task.id.in_(task_ids),
                Task.user_id == user_id,
                Task.deleted_at.is_(None),
                Task.status.in_(OPEN_STATUSES),
            )
            .order_by(Task.due_date, Task.id)
        )
        return list(tasks.scalars())
