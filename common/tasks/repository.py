"""SQL for tasks. Every statement is scoped to its owner and to live (not deleted) rows.

Timestamps are `statement_timestamp()`: the moment of the statement (`now()` would be the start
of the transaction, the same for every statement of it).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import bindparam, case, delete, func, insert, null, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import Result
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.sql import Executable

from common.models import Task, TaskStatus, task_categories
from common.tasks.queries import (
    Position,
    TaskListQuery,
    count_statement,
    list_parameters,
    page_statement,
    tail_statement,
)
from common.tasks.views import NEW_TASK_COLUMNS, VIEW_COLUMNS, TaskRow

_GET_VIEW = select(*VIEW_COLUMNS).where(
    Task.id == bindparam("task_id"),
    Task.user_id == bindparam("user_id"),
    Task.deleted_at.is_(None),
)
"""Built once: the hottest read skips building the statement and its cache key each time."""


class TaskRepository:
    def __init__(self, session: AsyncSession | AsyncConnection) -> None:
        self._session = session

    async def _execute(
        self, statement: Executable, parameters: dict[str, Any] | None = None
    ) -> Result[Any]:
        """Core execution, also inside a session's transaction: these statements load no ORM
        objects, and the session's ORM execution layer would cost more than the SQL."""
        connection = self._session
        if isinstance(connection, AsyncSession):
            connection = await connection.connection()
        return await connection.execute(statement, parameters)

    async def get_view(self, user_id: uuid.UUID, task_id: uuid.UUID) -> TaskRow | None:
        """The task as a response shows it (one statement), fresh from the database."""
        result = await self._execute(_GET_VIEW, {"task_id": task_id, "user_id": user_id})
        return result.first()

    async def insert(self, values: dict[str, Any]) -> TaskRow:
        now = func.statement_timestamp()
        stmt = (
            insert(Task)
            .values(created_at=now, updated_at=now, **values)
            .returning(*NEW_TASK_COLUMNS)
        )
        return (await self._execute(stmt)).one()

    async def update_changed(
        self,
        user_id: uuid.UUID,
        task_id: uuid.UUID,
        changes: dict[str, Any],
        *,
        version: int | None,
        keep_due_date: bool = False,
    ) -> TaskRow | None:
        """Apply `changes` in one statement and return the task, or None when nothing matched:
        no such live task, not at `version` (when given), or every value already as asked.

        A compare-and-set: of two racing writers with the same version exactly one matches;
        the other waits for its row lock, re-checks the condition after the commit and matches
        nothing. With `keep_due_date`, it matches only while the task's due date is already
        the one in `changes` (how a past due date may be echoed back). A new due date re-arms
        its reminder; a status change sets `completed_at` when it becomes `completed` and
        clears it otherwise (the CASEs see the row before the update).
        """
        values: dict[str, Any] = dict(changes)
        if "due_date" in changes:
            values["reminder_sent_at"] = case(
                (Task.due_date.is_distinct_from(changes["due_date"]), null()),
                else_=Task.reminder_sent_at,
            )
        if "status" in changes:
            completed = changes["status"] is TaskStatus.COMPLETED
            values["completed_at"] = case(
                (Task.status == changes["status"], Task.completed_at),
                else_=func.statement_timestamp() if completed else null(),
            )
        stmt = (
            update(Task)
            .where(
                Task.id == task_id,
                Task.user_id == user_id,
                Task.deleted_at.is_(None),
                or_(*(getattr(Task, name).is_distinct_from(v) for name, v in changes.items())),
            )
            .values(**values, version=Task.version + 1, updated_at=func.statement_timestamp())
            .execution_options(synchronize_session=False)
        )
        if keep_due_date:
            stmt = stmt.where(Task.due_date.is_not_distinct_from(changes["due_date"]))
        if version is None:
            # Without a version check the UPDATE may have waited for another writer's row
            # lock (a category assignment, say) and RETURNING's subquery would still see the
            # categories of before; a statement of its own sees the committed state.
            if (await self._execute(stmt.returning(Task.id))).first() is None:
                return None
            return await self.get_view(user_id, task_id)
        stmt = stmt.where(Task.version == version).returning(*VIEW_COLUMNS)
        return (await self._execute(stmt)).first()

    async def soft_delete(
        self, user_id: uuid.UUID, task_id: uuid.UUID, *, version: int | None = None
    ) -> bool:
        stmt = update(Task).where(
            Task.id == task_id, Task.user_id == user_id, Task.deleted_at.is_(None)
        )
        if version is not None:
            stmt = stmt.where(Task.version == version)
        stmt = (
            stmt.values(
                deleted_at=func.statement_timestamp(),
                version=Task.version + 1,
                updated_at=func.statement_timestamp(),
            )
            .returning(Task.id)
            .execution_options(synchronize_session=False)
        )
        return (await self._execute(stmt)).first() is not None

    async def touch(self, user_id: uuid.UUID, task_id: uuid.UUID) -> bool:
        """Bump the version of a live task (its representation changed), locking its row."""
        stmt = (
            update(Task)
            .where(Task.id == task_id, Task.user_id == user_id, Task.deleted_at.is_(None))
            .values(version=Task.version + 1, updated_at=func.statement_timestamp())
            .returning(Task.id)
            .execution_options(synchronize_session=False)
        )
        return (await self._execute(stmt)).first() is not None

    async def link_category(self, task_id: uuid.UUID, category_id: uuid.UUID) -> bool:
        """False when the link already existed."""
        stmt = (
            pg_insert(task_categories)
            .values(task_id=task_id, category_id=category_id)
            .on_conflict_do_nothing()
            .returning(task_categories.c.task_id)
        )
        return (await self._execute(stmt)).first() is not None

    async def unlink_category(self, task_id: uuid.UUID, category_id: uuid.UUID) -> bool:
        stmt = (
            delete(task_categories)
            .where(
                task_categories.c.task_id == task_id,
                task_categories.c.category_id == category_id,
            )
            .returning(task_categories.c.task_id)
        )
        return (await self._execute(stmt)).first() is not None

    async def list_page(
        self, user_id: uuid.UUID, query: TaskListQuery, position: Position | None = None
    ) -> tuple[Sequence[TaskRow], int | None]:
        """One page, categories included (one statement), and the total (a second, skipped
        when the first page is not full). A separate count is several times faster than
        `count(*) OVER ()` at 50k rows: it can be an index-only scan, while the window function
        must fetch every matching row.

        After a `position` (a keyset page): up to `limit + 1` rows (the extra one says that
        more follow) and no total; a second statement only when the page crosses from dated
        to undated tasks (`common.tasks.keyset`)."""
        parameters = list_parameters(user_id, query, position)
        rows = list((await self._execute(page_statement(query, position), parameters)).all())
        if position is not None:
            tail = tail_statement(query, position)
            if tail is not None and len(rows) <= query.limit:
                parameters["limit"] = query.limit + 1 - len(rows)
                rows += (await self._execute(tail, parameters)).all()
            return rows, None
        if query.offset == 0 and len(rows) < query.limit:
            return rows, len(rows)
        count = await self._execute(count_statement(query), parameters)
        return rows, count.scalar_one()
