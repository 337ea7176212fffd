"""Direct row factories for tests that set up state the API would refuse (past due dates)."""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, datetime

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from common.models import Task, TaskPriority, TaskStatus, User
from tests.support.factories import Account

_counter = itertools.count(1)


async def make_user(
    session: AsyncSession,
    *,
    reminder_minutes_before: int = 60,
    timezone: str = "UTC",
    email: str | None = None,
    verified: bool = True,
) -> User:
    user = User(
        email=email or f"row{next(_counter)}-{uuid.uuid4().hex[:6]}@example.com",
        password_hash="$2b$04$" + "x" * 53,
        full_name="Row User",
        reminder_minutes_before=reminder_minutes_before,
        timezone=timezone,
        email_verified_at=datetime.now(UTC) if verified else None,
    )
    session.add(user)
    await session.flush()
    return user


async def make_task(
    session: AsyncSession,
    user: User,
    *,
    title: str = "Write the report",
    due_date: datetime | None = None,
    status: TaskStatus = TaskStatus.PENDING,
    priority: TaskPriority = TaskPriority.MEDIUM,
    deleted_at: datetime | None = None,
) -> Task:
    task = Task(
        user_id=user.id,
        title=title,
        due_date=due_date,
        status=status,
        priority=priority,
        deleted_at=deleted_at,
    )
    session.add(task)
    await session.flush()
    return task


async def verify_address(session: AsyncSession, account: Account) -> None:
    """Mark an account registered through the API as verified (as following the link does)."""
    await session.execute(
        update(User).where(User.email == account.email).values(email_verified_at=datetime.now(UTC))
    )
    await session.flush()
