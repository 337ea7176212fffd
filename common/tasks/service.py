"""Task rules: ownership, optimistic locking, completion and reminder bookkeeping, subtasks
and the trash.

Subtasks: a parent is a live task of the same user, a task never sits under itself or its own
subtasks, and tasks nest at most `MAX_DEPTH` levels. Every change of the tree's shape (a new
parent, a delete, a restore) and every write of several tasks at once (a subtree, a batch)
first takes the owner's tree lock (`TaskRepository.lock_tree`): the checks see every earlier
change of the tree committed, and no two writes of several rows wait for each other's.
Deleting a task deletes its live subtree with it; restoring it brings back what was deleted
with it.

Every write records a `TaskChanged` in the unit of work, which commits it; its subscribers
then bump the owner's cache generation (reads of single tasks and list pages, cached, are
`common.tasks.reader`'s).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

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
from common.tasks.errors import (
    MAX_DEPTH,
    CategoryAlreadyAssigned,
    ParentDeleted,
    SubtreeTooDeep,
    TaskNotFound,
)
from common.tasks.recurring import RecurringTasks, just_completed
from common.tasks.repository import TaskRepository
from common.tasks.views import TaskRow

log = get_logger(__name__)

EDITABLE_FIELDS = frozenset(
    {"title", "description", "status", "priority", "due_date", "recurrence", "parent_id"}
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
    parent_id: uuid.UUID | None = None

    def row(self, user_id: uuid.UUID) -> dict[str, Any]:
        """The values `TaskRepository.insert` takes."""
        return {
            "id": uuid.uuid4(),
            "user_id": user_id,
            "parent_id": self.parent_id,
            "title": self.title,
            "description": self.description or None,
            "due_date": self.due_date,
            "priority": self.priority,
            "status": self.status,
            "completed": self.status is TaskStatus.COMPLETED,
        }


def _in_past(moment: datetime) -> bool:
    return moment <= datetime.now(UTC)


def require_future(due_date: datetime | None) -> None:
    if due_date is not None and _in_past(due_date):
        raise InvalidInput("due_date must be in the future", field="due_date")


class TaskService:
    def __init__(self, uow: UnitOfWork) -> None:
        self._uow = uow
        self._tasks = TaskRepository(uow.session)
        self._categories = CategoryRepository(uow.session)
        self._recurring = RecurringTasks(uow.session)
        self._tree_locked = False

    async def get(self, user_id: uuid.UUID, task_id: uuid.UUID) -> TaskRow:
        """The task from the database (not the cache): for checks before a write."""
        task = await self._tasks.get_view(user_id, task_id)
        if task is None:
            raise TaskNotFound()
        return task

    # Writes ----------------------------------------------------------------------------

    async def new_row(self, user_id: uuid.UUID, new: NewTask) -> dict[str, Any]:
        """The row of a task about to be created, once its rules hold: a future due date, a
        valid series (400 naming the part of the rule), a place in the tree (400 naming
        `parent_id`, after the tree lock)."""
        require_future(new.due_date)
        series: dict[str, Any] = {}
        if new.recurrence is not None:
            if new.status not in OPEN_STATUSES:
                raise InvalidInput(
                    "a recurring task starts pending or in progress", field=RECURRENCE
                )
            series = await self._recurring.series_columns(user_id, new.recurrence, new.due_date)
        if new.parent_id is not None:
            await self.check_place(user_id, None, new.parent_id)
        return {**new.row(user_id), **series}

    async def create(self, user_id: uuid.UUID, new: NewTask) -> TaskRow:
        (task,) = await self._tasks.insert([await self.new_row(user_id, new)])
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
        if "parent_id" in changes:
            await self.check_place(user_id, task_id, changes["parent_id"])
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
            require_future(changes["due_date"])
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
        """Soft delete of the task and its subtasks: they disappear from every read and write
        at once, into the trash."""
        version = None
        if precondition is not None:
            current = await self.get(user_id, task_id)
            if not precondition(current):
                raise PreconditionFailed("The task has changed since you read it (If-Match)")
            version = current.version
        await self.lock_tree(user_id)
        deleted = await self._tasks.soft_delete(user_id, [task_id], version=version)
        if not deleted:
            if version is not None and await self._tasks.get_view(user_id, task_id) is not None:
                raise PreconditionFailed("The task has changed since you read it (If-Match)")
            raise TaskNotFound()
        for deleted_id in deleted:
            self._changed(user_id, deleted_id, ChangeKind.DELETED)
        log.info("task_deleted", task_id=str(task_id), with_subtasks=len(deleted) - 1)

    async def restore(
        self, user_id: uuid.UUID, task_id: uuid.UUID, *, kept_for: timedelta
    ) -> TaskRow:
        """Bring a task back from the trash (deleted less than `kept_for` ago), with the
        subtasks deleted together with it; each gets a new version. A task that is already
        live is answered as it is (a retried restore). 404 when it is not in the trash;
        409 while its parent is, or when its parent moved so deep that the subtree would
        nest too far."""
        await self.lock_tree(user_id)
        live = await self._tasks.get_view(user_id, task_id)
        if live is not None:
            return live
        subtree = await self._tasks.deleted_subtree(user_id, task_id, kept_for=kept_for)
        if not subtree:
            raise TaskNotFound()
        _, parent_id, _ = subtree[0]
        depth = 0
        if parent_id is not None:
            ancestry = await self._tasks.ancestry(user_id, parent_id)
            if ancestry is None:
                raise ParentDeleted(parent_id)
            depth = len(ancestry)
        if depth + max(level for _, _, level in subtree) > MAX_DEPTH:
            raise SubtreeTooDeep()
        for restored_id in await self._tasks.restore(user_id, [row[0] for row in subtree]):
            self._changed(user_id, restored_id, ChangeKind.RESTORED)
        log.info("task_restored", task_id=str(task_id), with_subtasks=len(subtree) - 1)
        return await self.get(user_id, task_id)

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
        if completed.parent_id is not None:
            await self.lock_tree(user_id)  # a new subtask: not while its parent is deleted
        next_id = await self._recurring.continue_series(user_id, completed)
        if next_id is not None:
            self._changed(user_id, next_id, ChangeKind.CREATED)
            log.info("task_occurrence_created", task_id=str(next_id), after=str(completed.id))

    async def lock_tree(self, user_id: uuid.UUID) -> None:
        """The owner's tree lock, taken once per unit of work (it lasts until the commit)."""
        if not self._tree_locked:
            await self._tasks.lock_tree(user_id)
            self._tree_locked = True

    async def check_place(
        self, user_id: uuid.UUID, task_id: uuid.UUID | None, parent_id: uuid.UUID | None
    ) -> None:
        """May the task (None: a new one) sit under `parent_id` (None: at the top)? Takes the
        tree lock first; a 400 naming `parent_id` otherwise."""
        await self.lock_tree(user_id)
        if parent_id is None:
            return
        ancestry = await self._tasks.ancestry(user_id, parent_id)
        if ancestry is None:
            raise InvalidInput(
                "No such task (a parent must be one of your live tasks)", field="parent_id"
            )
        if task_id in ancestry:
            raise InvalidInput(
                "A task cannot be put under itself or one of its own subtasks", field="parent_id"
            )
        height = (
            1 if task_id is None else max(await self._tasks.subtree_height(user_id, task_id), 1)
        )
        if len(ancestry) + height > MAX_DEPTH:
            raise InvalidInput(
                f"Subtasks nest at most {MAX_DEPTH} levels deep: this parent is at level "
                f"{len(ancestry)} and the task brings {height} level(s)",
                field="parent_id",
            )

    def _changed(
        self,
        user_id: uuid.UUID,
        task_id: uuid.UUID,
        kind: ChangeKind = ChangeKind.UPDATED,
        *,
        completed: bool = False,
    ) -> None:
        self._uow.record(TaskChanged(user_id, task_id, kind, completed=completed))
