"""SQL for tasks. Every statement is scoped to its owner and to live (not deleted) rows.

Timestamps are `statement_timestamp()`: the moment of the statement (`now()` would be the start
of the transaction, the same for every statement of it).
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    Boolean,
    Integer,
    Interval,
    bindparam,
    case,
    delete,
    func,
    insert,
    null,
    or_,
    select,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import Result
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.sql import Executable
from sqlalchemy.sql.dml import Update

from common.models import Task, TaskStatus, task_categories
from common.tasks import tree
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

_NOW = func.statement_timestamp()
_INSERT = (
    insert(Task)
    .values(
        created_at=_NOW,
        updated_at=_NOW,
        completed_at=case((bindparam("completed", type_=Boolean()), _NOW), else_=null()),
    )
    .returning(*NEW_TASK_COLUMNS, sort_by_parameter_order=True)
)


@functools.lru_cache(maxsize=512)
def _update_statement(fields: tuple[str, ...], versioned: bool, keep_due_date: bool) -> Update:
    """The UPDATE of `TaskRepository.update_changed` for one set of fields, built once: its
    values are bound parameters (`new_<field>`, `completing`, `match_*`), so a PATCH
    skips building the statement and its cache key (a tenth of its CPU when built each time)."""
    columns = Task.__table__.c
    new = {name: bindparam(f"new_{name}", type_=columns[name].type) for name in fields}
    values: dict[str, Any] = dict(new)
    if "due_date" in new:
        values["reminder_sent_at"] = case(
            (Task.due_date.is_distinct_from(new["due_date"]), null()),
            else_=Task.reminder_sent_at,
        )
    if "status" in new:
        values["completed_at"] = case(
            (Task.status == new["status"], Task.completed_at),
            (bindparam("completing", type_=Boolean()), _NOW),
            else_=null(),
        )
    statement = (
        update(Task)
        .where(
            Task.id == bindparam("match_id"),
            Task.user_id == bindparam("match_user_id"),
            Task.deleted_at.is_(None),
            or_(*(getattr(Task, name).is_distinct_from(new[name]) for name in fields)),
        )
        .values(**values, version=Task.version + 1, updated_at=_NOW)
        .execution_options(synchronize_session=False)
    )
    if keep_due_date:
        statement = statement.where(Task.due_date.is_not_distinct_from(new["due_date"]))
    if not versioned:
        return statement.returning(Task.id)
    return statement.where(Task.version == bindparam("match_version")).returning(*VIEW_COLUMNS)


class TaskRepository:
    def __init__(self, session: AsyncSession | AsyncConnection) -> None:
        self._session = session

    async def _execute(
        self, statement: Executable, parameters: dict[str, Any] | list[dict[str, Any]] | None = None
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

    async def insert(self, rows: Sequence[dict[str, Any]]) -> Sequence[TaskRow]:
        """New tasks, in one statement, returned in the order given. Each row has the
        task's columns and `completed` (its status is `completed`: `completed_at` is then the
        statement's time)."""
        return (await self._execute(_INSERT, list(rows))).all()

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
        statement = _update_statement(tuple(sorted(changes)), version is not None, keep_due_date)
        parameters = {f"new_{name}": value for name, value in changes.items()}
        parameters.update(match_id=task_id, match_user_id=user_id)
        if version is not None:
            parameters["match_version"] = version
        if "status" in changes:
            parameters["completing"] = changes["status"] is TaskStatus.COMPLETED
        if version is None:
            # Without a version check the UPDATE may have waited for another writer's row
            # lock (a category assignment, say) and RETURNING's subquery would still see the
            # categories of before; a statement of its own sees the committed state.
            if (await self._execute(statement, parameters)).first() is None:
                return None
            return await self.get_view(user_id, task_id)
        return (await self._execute(statement, parameters)).first()

    async def lock_tree(self, user_id: uuid.UUID) -> None:
        """Serialise the changes of the user's task tree (new parents, deletes, restores) until
        the commit: two concurrent moves could otherwise each pass the cycle check and
        together build a cycle, or a subtask land under a parent being deleted."""
        key = func.hashtextextended(f"task-tree:{user_id}", 0)
        await self._execute(select(func.pg_advisory_xact_lock(key)))

    async def ancestry(self, user_id: uuid.UUID, task_id: uuid.UUID) -> list[uuid.UUID] | None:
        """The live task and its ancestors, nearest first; None unless the task is the user's
        and live."""
        ids = list((await self._execute(tree.ancestry(user_id, task_id))).scalars())
        return ids or None

    async def subtree_height(self, user_id: uuid.UUID, task_id: uuid.UUID) -> int:
        """Levels of the live subtree under a live task, the task included (a leaf: 1; not
        found: 0)."""
        return int((await self._execute(tree.subtree_height(user_id, task_id))).scalar_one())

    async def lock(self, user_id: uuid.UUID, task_ids: Sequence[uuid.UUID]) -> None:
        """Lock the user's tasks among these for an update, in id order: two transactions
        that each update several of the same tasks then wait for each other instead of
        deadlocking (each would otherwise lock them in its own order)."""
        stmt = (
            select(Task.id)
            .where(Task.id.in_(task_ids), Task.user_id == user_id)
            .order_by(Task.id)
            .with_for_update(key_share=True)  # FOR NO KEY UPDATE, as an UPDATE takes
        )
        await self._execute(stmt)

    async def live_ids(
        self, user_id: uuid.UUID, task_ids: Sequence[uuid.UUID]
    ) -> Sequence[uuid.UUID]:
        """Which of these are live tasks of the user."""
        stmt = select(Task.id).where(
            Task.id.in_(task_ids), Task.user_id == user_id, Task.deleted_at.is_(None)
        )
        return (await self._execute(stmt)).scalars().all()

    async def soft_delete(
        self, user_id: uuid.UUID, task_ids: Sequence[uuid.UUID], *, version: int | None = None
    ) -> list[uuid.UUID]:
        """Soft-delete live tasks and their live subtrees in one statement (one timestamp,
        which is how a restore finds what was deleted together); the ids deleted. With
        `version`, the (single) task must be at it."""
        statement = tree.soft_delete(user_id, task_ids, version=version)
        return list((await self._execute(statement)).scalars())

    async def deleted_subtree(
        self, user_id: uuid.UUID, task_id: uuid.UUID, *, kept_for: timedelta
    ) -> list[tuple[uuid.UUID, uuid.UUID | None, int]]:
        """A task in the trash (deleted less than `kept_for` ago) and what was deleted with it
        below it: (id, parent id, level), the task first; empty when it is not in the trash."""
        rows = await self._execute(tree.deleted_subtree(user_id, task_id, kept_for=kept_for))
        return [(row.id, row.parent_id, row.level) for row in rows]

    async def restore(self, user_id: uuid.UUID, task_ids: Sequence[uuid.UUID]) -> list[uuid.UUID]:
        stmt = (
            update(Task)
            .where(Task.id.in_(task_ids), Task.user_id == user_id, Task.deleted_at.is_not(None))
            .values(
                deleted_at=None,
                version=Task.version + 1,
                updated_at=func.statement_timestamp(),
            )
            .returning(Task.id)
            .execution_options(synchronize_session=False)
        )
        return list((await self._execute(stmt)).scalars())

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

    async def trash_page(
        self,
        user_id: uuid.UUID,
        *,
        kept_for: timedelta,
        limit: int,
        after: tuple[datetime, uuid.UUID] | None,
    ) -> Sequence[TaskRow]:
        """Deleted tasks still kept (deleted less than `kept_for` ago), newest deletion first
        (`ix_tasks_user_deleted`), after the (deleted_at, id) position; each row is the task
        view and its `deleted_at`."""
        stmt = TRASH_PAGE if after is None else TRASH_PAGE_AFTER
        parameters: dict[str, Any] = {"user_id": user_id, "kept_for": kept_for, "limit": limit}
        if after is not None:
            parameters.update(after_deleted_at=after[0], after_id=after[1])
        return (await self._execute(stmt, parameters)).all()


TRASH_PAGE = (
    select(*VIEW_COLUMNS, Task.deleted_at)
    .where(
        Task.user_id == bindparam("user_id"),
        Task.deleted_at.is_not(None),
        Task.deleted_at > func.statement_timestamp() - bindparam("kept_for", type_=Interval()),
    )
    .order_by(Task.deleted_at.desc(), Task.id.desc())
    .limit(bindparam("limit", type_=Integer()))
)
TRASH_PAGE_AFTER = TRASH_PAGE.where(
    tuple_(Task.deleted_at, Task.id)
    < tuple_(
        bindparam("after_deleted_at", type_=Task.deleted_at.type),
        bindparam("after_id", type_=Task.id.type),
    )
)
