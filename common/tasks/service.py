"""Task rules: ownership, optimistic locking, completion and reminder bookkeeping.

Every write records a `TaskChanged` in the unit of work, which commits it; its subscribers
then bump the owner's cache generation (reads of single tasks and list pages, cached, are
`common.tasks.reader`'s).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func

from common.categories.errors import CategoryNotFound
from common.categories.repository import CategoryRepository
from common.db.changes import ChangeKind, TaskChanged
from common.db.uow import UnitOfWork
from common.errors import (
    Conflict,
    InvalidInput,
    NotFound,
    PreconditionFailed,
    VersionConflict,
)
from common.logging import get_logger
from common.models import OPEN_STATUSES, TaskPriority, TaskStatus
from common.recurrence import FIELD as RECURRENCE
from common.tasks.errors import CategoryAlreadyAssigned, TaskNotFound
from common.tasks.recurring import RecurringTasks, just_completed
from common.tasks.repository import TaskRepository
from common.tasks.views import TaskRow

log = get_logger(__name__)

EDITABLE_FIELDS = frozenset(
    {"title", "description", "status", "priority", "due_date", "recurrence"}
)

Precondition = Callable[[TaskRow], bool]
"""A check of the current task before a write (the API's If-Match); False gives 412."""


@dataclass(frozen=True, slots=True)
class NewTask:
    title: str
    description: str | None = None
    due_date: datetime | None = None
    priority: TaskPriority = TaskPriority.MEDIUM
    status: TaskStatus = TaskStatus.PENDING
    recurrence: str | None = None


def _in_past(moment: datetime) -> bool:
    return moment <= datetime.now(UTC)


def _require_future(due_date: datetime | None) -> None:
    if due_date is not None and _in_past(due_date):
        raise InvalidInput("due_date must be in the future", field="due_date")


class TaskService:
    def __init__(self, uow: UnitOfWork) -> None:
        self._uow = uow
        self._tasks = TaskRepository(uow.session)
        self._categories = CategoryRepository(uow.session)
        self._recurring = RecurringTasks(uow.session)

    async def get(self, user_id: uuid.UUID, task_id: uuid.UUID) -> TaskRow:
        """The task from the database (not the cache): for checks before a write."""
        task = await self._tasks.get_view(user_id, task_id)
        if task is None:
            raise TaskNotFound()
        return task

    # Writes ----------------------------------------------------------------------------

    async def create(self, user_id: uuid.UUID, new: NewTask) -> TaskRow:
        _require_future(new.due_date)
        series: dict[str, Any] = {}
        if new.recurrence is not None:
            if new.status not in OPEN_STATUSES:
                raise InvalidInput(
                    "a recurring task starts pending or in progress", field=RECURRENCE
                )
            series = await self._recurring.series_columns(user_id, new.recurrence, new.due_date)
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
                **series,
            }
        )
        self._changed(user_id, task.id, ChangeKind.CREATED)
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
    ) -> TaskRow:
        """Apply `changes` if the task is still at `expected_version` (409 otherwise) and
        satisfies `precondition` (412 otherwise); with neither, the last writer wins. Sending
        unchanged values writes nothing.

        Usually one statement: an UPDATE that checks the version and that something changes,
        and returns the task. The task is read first only to evaluate `precondition`; after an
        UPDATE that matched nothing, one read tells why."""
        unknown = set(changes) - EDITABLE_FIELDS
        if unknown:
            raise ValueError(f"not editable: {sorted(unknown)}")
        if "description" in changes:
            changes = {**changes, "description": changes["description"] or None}
        changes = await self._recurring.update_columns(user_id, task_id, changes)
        version = expected_version
        if precondition is not None:
            current = await self.get(user_id, task_id)
            if not precondition(current):
                raise PreconditionFailed("The task has changed since you read it (If-Match)")
            if expected_version is not None and current.version != expected_version:
                raise VersionConflict(current.version)
            version = current.version
        # A due date in the past is accepted only where it is the task's current one (a client
        # echoing the task back); the UPDATE itself checks that, so no read is needed first.
        past_due_date = changes.get("due_date") is not None and _in_past(changes["due_date"])
        task = None
        if changes:
            task = await self._tasks.update_changed(
                user_id, task_id, changes, version=version, keep_due_date=past_due_date
            )
        if task is not None:
            completed = just_completed(task)
            self._changed(user_id, task_id, completed=completed)
            if completed and task.recurrence is not None:
                await self._continue_series(user_id, task)
            return task
        # Nothing matched: gone (404), changed by someone else, a new past due date, or
        # nothing to change.
        latest = await self.get(user_id, task_id)
        if version is not None and latest.version != version:
            if expected_version is not None:
                raise VersionConflict(latest.version)
            raise PreconditionFailed("The task has changed since you read it (If-Match)")
        if past_due_date and latest.due_date != changes["due_date"]:
            _require_future(changes["due_date"])
        return latest

    async def skip(
        self, user_id: uuid.UUID, task_id: uuid.UUID, *, precondition: Precondition | None = None
    ) -> TaskRow:
        """Move a recurring task to its next occurrence without completing it (the due date
        may then still be in the past: the occurrence after an overdue one)."""
        if precondition is not None and not precondition(await self.get(user_id, task_id)):
            raise PreconditionFailed("The task has changed since you read it (If-Match)")
        due_date, version = await self._recurring.skip_target(user_id, task_id)
        task = await self._tasks.update_changed(
            user_id, task_id, {"due_date": due_date}, version=version
        )
        if task is None:
            raise Conflict("The task changed while it was being skipped; read it and try again")
        self._changed(user_id, task_id)
        log.info("task_skipped", task_id=str(task_id))
        return task

    async def next_occurrence(self, user_id: uuid.UUID, task: TaskRow) -> TaskRow | None:
        """The occurrence created by completing `task` (None when it is not one)."""
        return await self._recurring.next_of(user_id, task)

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
            if version is not None and await self._tasks.get_view(user_id, task_id) is not None:
                raise PreconditionFailed("The task has changed since you read it (If-Match)")
            raise TaskNotFound()
        self._changed(user_id, task_id, ChangeKind.DELETED)
        log.info("task_deleted", task_id=str(task_id))

    async def assign_category(
        self, user_id: uuid.UUID, task_id: uuid.UUID, category_id: uuid.UUID
    ) -> TaskRow:
        """Link a category; the task's version is bumped (its representation changed)."""
        if not await self._tasks.touch(user_id, task_id):
            raise TaskNotFound()
        if not await self._categories.exists_locked(user_id, category_id):
            raise CategoryNotFound()
        if not await self._tasks.link_category(task_id, category_id):
            raise CategoryAlreadyAssigned()
        self._changed(user_id, task_id)
        return await self.get(user_id, task_id)

    async def remove_category(
        self, user_id: uuid.UUID, task_id: uuid.UUID, category_id: uuid.UUID
    ) -> None:
        if not await self._tasks.touch(user_id, task_id):
            raise TaskNotFound()
        if not await self._categories.exists_locked(user_id, category_id):
            raise CategoryNotFound()
        if not await self._tasks.unlink_category(task_id, category_id):
            raise NotFound("The task does not have this category")
        self._changed(user_id, task_id)

    # Helpers ---------------------------------------------------------------------------

    async def _continue_series(self, user_id: uuid.UUID, completed: TaskRow) -> None:
        next_id = await self._recurring.continue_series(user_id, completed)
        if next_id is not None:
            self._changed(user_id, next_id, ChangeKind.CREATED)
            log.info("task_occurrence_created", task_id=str(next_id), after=str(completed.id))

    def _changed(
        self,
        user_id: uuid.UUID,
        task_id: uuid.UUID,
        kind: ChangeKind = ChangeKind.UPDATED,
        *,
        completed: bool = False,
    ) -> None:
        self._uow.record(TaskChanged(user_id, task_id, kind, completed=completed))
