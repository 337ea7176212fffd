"""SQL for recurring tasks: a task's series, and the occurrence after a completed one."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, TypeAlias

from sqlalchemy import DateTime, Row, func, literal, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from common.models import Task, TaskStatus, task_categories
from common.tasks.views import VIEW_COLUMNS, TaskRow

CARRIED_OVER = (
    Task.user_id,
    Task.parent_id,
    Task.title,
    Task.description,
    Task.priority,
    Task.recurrence,
    Task.recurrence_start,
    Task.recurrence_zone,
)
"""What the next occurrence takes from the completed one (its categories are copied too; it
sits under the same parent)."""

SeriesRow: TypeAlias = Row[*tuple[Any, ...]]
"""A task's `recurrence`, `recurrence_start`, `recurrence_zone`, `due_date`, `status`, `version`."""


class OccurrenceRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def series(self, user_id: uuid.UUID, task_id: uuid.UUID) -> SeriesRow | None:
        """The live task's series and what a skip or an attached rule must check."""
        statement = select(
            Task.recurrence,
            Task.recurrence_start,
            Task.recurrence_zone,
            Task.due_date,
            Task.status,
            Task.version,
        ).where(Task.id == task_id, Task.user_id == user_id, Task.deleted_at.is_(None))
        return (await self._session.execute(statement)).first()

    async def insert_next(self, previous_id: uuid.UUID, due_date: datetime) -> uuid.UUID | None:
        """Create the occurrence after `previous_id`, due at `due_date`, with its categories;
        None when it exists already (the unique link makes a second completion a no-op)."""
        now = func.statement_timestamp()
        new_id = uuid.uuid4()
        copied = select(
            literal(new_id),
            *CARRIED_OVER,
            literal(TaskStatus.PENDING.value),
            literal(due_date, DateTime(timezone=True)),
            Task.id,
            now,
            now,
        ).where(Task.id == previous_id)
        columns = [
            Task.id,
            *CARRIED_OVER,
            Task.status,
            Task.due_date,
            Task.previous_occurrence_id,
            Task.created_at,
            Task.updated_at,
        ]
        statement = (
            insert(Task)
            .from_select([column.key for column in columns], copied)
            .on_conflict_do_nothing(
                index_elements=[Task.previous_occurrence_id],
                index_where=Task.previous_occurrence_id.is_not(None),
            )
            .returning(Task.id)
        )
        if (await self._session.execute(statement)).first() is None:
            return None
        await self._session.execute(
            insert(task_categories).from_select(
                ["task_id", "category_id"],
                select(literal(new_id), task_categories.c.category_id).where(
                    task_categories.c.task_id == previous_id
                ),
            )
        )
        return new_id

    async def next_of(self, user_id: uuid.UUID, task_id: uuid.UUID) -> TaskRow | None:
        """The live occurrence that completing `task_id` created, as a response shows it."""
        statement = select(*VIEW_COLUMNS).where(
            Task.previous_occurrence_id == task_id,
            Task.user_id == user_id,
            Task.deleted_at.is_(None),
        )
        return (await self._session.execute(statement)).first()
