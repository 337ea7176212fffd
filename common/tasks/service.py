"""Task rules: ownership, optimistic locking, completion and reminder bookkeeping, caching.

Writes commit before they return, then bump the owner's cache generation. Reads of single
tasks and list pages go through the response cache and return the response bytes.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func
from sqlalchemy.orm.attributes import set_committed_value

from common.cache import ResponseCache
from common.categories.errors import CategoryNotFound
from common.categories.repository import CategoryRepository
from common.db.uow import UnitOfWork
from common.errors import InvalidInput, NotFound, PreconditionFailed, VersionConflict
from common.logging import get_logger
from common.models import Task, TaskPriority, TaskStatus
from common.tasks.errors import CategoryAlreadyAssigned, TaskNotFound
from common.tasks.queries import TaskListQuery
from common.tasks.repository import TaskRepository
from common.tasks.schemas import render_page, render_task

log = get_logger(__name__)

EDITABLE_FIELDS = frozenset({"title", "description", "status", "priority", "due_date"})

Precondition = Callable[[Task], bool]
"""A check of the current task before a write (the API's If-Match); False gives 412."""


@dataclass(frozen=True, slots=True)
class NewTask:
    title: str
    description: str | None = None
    due_date: datetime | None = None
    priority: TaskPriority = TaskPriority.MEDIUM
    status: TaskStatus = TaskStatus.PENDING


def _require_future(due_date: datetime | None) -> None:
    if due_date is not None and due_date <= datetime.now(UTC):
        raise InvalidInput("due_date must be in the future", field="due_date")


class TaskService:
    def __init__(self, uow: UnitOfWork, cache: ResponseCache) -> None:
        self._uow = uow
        self._cache = cache
        self._tasks = TaskRepository(uow.session)
        self._categories = CategoryRepository(uow.session)

    # Reads -----------------------------------------------------------------------------

    async def get(self, user_id: uuid.UUID, task_id: uuid.UUID) -> Task:
        """The task from the database (not the cache): for checks before a write."""
        task = await self._tasks.get_live(user_id, task_id)
        if task is None:
            raise TaskNotFound()
        return task

    async def get_json(self, user_id: uuid.UUID, task_id: uuid.UUID) -> bytes:
        async def build() -> bytes:
            return render_task(await self.get(user_id, task_id))

        return await self._cache.get_or_build(user_id, "task", str(task_id), build)

    async def list_json(self, user_id: uuid.UUID, query: TaskListQuery) -> bytes:
        async def build() -> bytes:
            tasks, total = await self._tasks.list_page(user_id, query)
            return render_page(tasks, total=total, page=query.page, limit=query.limit)

        if not query.cacheable:
            return await build()
        return await self._cache.get_or_build(user_id, "tasks", query.cache_key(), build)

    # Writes ----------------------------------------------------------------------------

    async def create(self, user_id: uuid.UUID, new: NewTask) -> Task:
        _require_future(new.due_date)
        task = await self._tasks.insert(
            {
                "id": uuid.uuid4(),
                "user_id": user_id,
                "title": new.title,
                "description": new.description or None,
                "due_date": new.due_date,
                "priority": new.priority,
                "status": new.status,
                "completed_at": func.statement_timestamp()
                if new.status is TaskStatus.COMPLETED
                else None,
            }
        )
        set_committed_value(task, "categories", [])
        await self._commit(user_id)
        log.info("task_created", task_id=str(task.id))
        return task

    async def update(
        self,
        user_id: uuid.UUID,
        task_id: uuid.UUID,
        changes: dict[str, Any],
        *,
        expected_version: int | None,
        precondition: Precondition | None = None,
    ) -> Task:
        """Apply `changes` if the task is still at `expected_version` (409 otherwise) and
        satisfies `precondition` (412 otherwise). Sending unchanged values writes nothing."""
        unknown = set(changes) - EDITABLE_FIELDS
        if unknown:
            raise ValueError(f"not editable: {sorted(unknown)}")
        current = await self.get(user_id, task_id)
        if precondition is not None and not precondition(current):
            raise PreconditionFailed("The task has changed since you read it (If-Match)")
        if expected_version is not None and current.version != expected_version:
            raise VersionConflict(current.version)

        values = self._changed_values(current, changes)
        if not values:
            return current
        if not await self._tasks.update_if_version(user_id, task_id, current.version, values):
            # Lost a race: another write committed between our read and our update.
            latest = await self._tasks.get_live(user_id, task_id)
            if latest is None:
                raise TaskNotFound()
            if expected_version is None:
                raise PreconditionFailed("The task has changed since you read it (If-Match)")
            raise VersionConflict(latest.version)
        task = await self.get(user_id, task_id)
        await self._commit(user_id)
        return task

    async def delete(
        self, user_id: uuid.UUID, task_id: uuid.UUID, *, precondition: Precondition | None = None
    ) -> None:
        """Soft delete: the task disappears from every read and write at once."""
        version = None
        if precondition is not None:
            current = await self.get(user_id, task_id)
            if not precondition(current):
                raise PreconditionFailed("The task has changed since you read it (If-Match)")
            version = current.version
        if not await self._tasks.soft_delete(user_id, task_id, version=version):
            if version is not None and await self._tasks.get_live(user_id, task_id) is not None:
                raise PreconditionFailed("The task has changed since you read it (If-Match)")
            raise TaskNotFound()
        await self._commit(user_id)
        log.info("task_deleted", task_id=str(task_id))

    async def assign_category(
        self, user_id: uuid.UUID, task_id: uuid.UUID, category_id: uuid.UUID
    ) -> Task:
        """Link a category; the task's version is bumped (its representation changed)."""
        if not await self._tasks.touch(user_id, task_id):
            raise TaskNotFound()
        if not await self._categories.exists_locked(user_id, category_id):
            raise CategoryNotFound()
        if not await self._tasks.link_category(task_id, category_id):
            raise CategoryAlreadyAssigned()
        task = await self.get(user_id, task_id)
        await self._commit(user_id)
        return task

    async def remove_category(
        self, user_id: uuid.UUID, task_id: uuid.UUID, category_id: uuid.UUID
    ) -> None:
        if not await self._tasks.touch(user_id, task_id):
            raise TaskNotFound()
        if not await self._categories.exists_locked(user_id, category_id):
            raise CategoryNotFound()
        if not await self._tasks.unlink_category(task_id, category_id):
            raise NotFound("The task does not have this category")
        await self._commit(user_id)

    # Helpers ---------------------------------------------------------------------------

    @staticmethod
    def _changed_values(current: Task, changes: dict[str, Any]) -> dict[str, Any]:
        if "description" in changes:
            changes = {**changes, "description": changes["description"] or None}
        values = {name: value for name, value in changes.items() if getattr(current, name) != value}
        if "due_date" in values:
            _require_future(values["due_date"])
            values["reminder_sent_at"] = None  # re-arm the reminder for the new date
        if "status" in values:
            becomes_completed = values["status"] is TaskStatus.COMPLETED
            values["completed_at"] = func.statement_timestamp() if becomes_completed else None
        return values

    async def _commit(self, user_id: uuid.UUID) -> None:
        await self._uow.commit()
        await self._cache.invalidate(user_id)
