"""Batches of task writes: up to `MAX_BATCH` creates, updates or deletes, all or nothing.

Every item is checked (and, for updates, applied) in the request's one transaction; when any
item fails, the batch raises one error naming each failed item by its index, the unit of work
rolls back, and nothing is written: no row, no feed entry, no job. One commit then means one
cache bump for the owner and one change-feed entry per task.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from common.db.changes import ChangeKind, TaskChanged
from common.db.uow import UnitOfWork
from common.errors import InvalidInput, NotFound, VersionConflict
from common.logging import get_logger
from common.tasks.errors import batch_rejected, item_error
from common.tasks.repository import TaskRepository
from common.tasks.service import NewTask, TaskService
from common.tasks.views import TaskRow

log = get_logger(__name__)

MAX_BATCH = 100
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class TaskEdit:
    """One item of a batch update: which task, the version the client read, what changes."""

    task_id: uuid.UUID
    version: int
    changes: dict[str, Any]


class TaskBatches:
    def __init__(self, uow: UnitOfWork) -> None:
        self._uow = uow
        self._tasks = TaskRepository(uow.session)
        self._service = TaskService(uow)

    async def create(self, user_id: uuid.UUID, items: Sequence[NewTask]) -> Sequence[TaskRow]:
        """The new tasks, in the order asked; one INSERT for all of them."""

        async def row_of(new: NewTask) -> dict[str, Any]:
            return await self._service.new_row(user_id, new)

        errors: list[dict[str, Any]] = []
        rows = [
            await _attempt(errors, index, functools.partial(row_of, new))
            for index, new in enumerate(items)
        ]
        if errors:
            raise batch_rejected(errors)
        created = await self._tasks.insert([row for row in rows if row is not None])
        for task in created:
            self._uow.record(TaskChanged(user_id, task.id, ChangeKind.CREATED))
        log.info("tasks_created", count=len(created))
        return created

    async def update(self, user_id: uuid.UUID, edits: Sequence[TaskEdit]) -> Sequence[TaskRow]:
        """Each edit as `PATCH /tasks/{id}` with `version` would make it, in order (a later
        item sees the earlier ones: a task may move under one moved just before)."""
        errors = _repeated([edit.task_id for edit in edits], "id")
        # Several tasks at once: the tree lock first (deletes and restores of subtrees take
        # it too), then the tasks in id order (as another batch would), so no two writes of
        # several tasks can wait for each other's rows.
        await self._service.lock_tree(user_id)
        await self._tasks.lock(user_id, [edit.task_id for edit in edits])
        updated: list[TaskRow] = []
        for index, edit in enumerate(edits):
            if any(error["loc"][2] == index for error in errors):
                continue
            update = functools.partial(
                self._service.update,
                user_id,
                edit.task_id,
                edit.changes,
                expected_version=edit.version,
            )
            task = await _attempt(errors, index, update)
            if task is not None:
                updated.append(task)
        if errors:
            raise batch_rejected(errors)
        return updated

    async def delete(self, user_id: uuid.UUID, task_ids: Sequence[uuid.UUID]) -> int:
        """Soft-delete the tasks and their subtasks (one statement); how many were deleted."""
        errors = _repeated(task_ids, "ids", item_location=False)
        await self._service.lock_tree(user_id)
        live = set(await self._tasks.live_ids(user_id, task_ids))
        errors += [
            item_error(["ids", index], "Task not found", "not_found")
            for index, task_id in enumerate(task_ids)
            if task_id not in live
        ]
        if errors:
            raise batch_rejected(errors)
        deleted = await self._tasks.soft_delete(user_id, task_ids)
        for task_id in deleted:
            self._uow.record(TaskChanged(user_id, task_id, ChangeKind.DELETED))
        log.info("tasks_deleted", count=len(task_ids), with_subtasks=len(deleted) - len(task_ids))
        return len(deleted)


def _repeated(
    ids: Sequence[uuid.UUID], name: str, *, item_location: bool = True
) -> list[dict[str, Any]]:
    """An error for each id that an earlier item already named."""
    first: dict[uuid.UUID, int] = {}
    errors = []
    for index, task_id in enumerate(ids):
        if task_id in first:
            location: list[str | int] = ["items", index, name] if item_location else [name, index]
            message = f"The same task as item {first[task_id]}: name each task once"
            errors.append(item_error(location, message, "value_error"))
        first.setdefault(task_id, index)
    return errors


async def _attempt(
    errors: list[dict[str, Any]], index: int, step: Callable[[], Awaitable[T]]
) -> T | None:
    """Run one item's step; a refusal becomes an error of item `index` (the batch goes on, so
    that one answer names every failed item)."""
    try:
        result = await step()
    except InvalidInput as error:
        for found in error.extra.get("errors") or [{"loc": ["body"], "msg": error.detail}]:
            field = found["loc"][1:]
            errors.append(item_error(["items", index, *field], found["msg"], "value_error"))
    except VersionConflict as error:
        errors.append(
            item_error(
                ["items", index, "version"],
                error.detail,
                "version_conflict",
                current_version=error.extra["current_version"],
            )
        )
    except NotFound as error:
        errors.append(item_error(["items", index, "id"], error.detail, "not_found"))
    else:
        return result
    return None
