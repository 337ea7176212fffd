"""Errors specific to tasks."""

from __future__ import annotations

import uuid
from typing import Any

from common.errors import AppError, Conflict, NotFound

MAX_DEPTH = 3
"""Levels of tasks: a task, its subtasks, and theirs."""


class TaskNotFound(NotFound):
    def __init__(self) -> None:
        super().__init__("Task not found")


class PreconditionRequired(AppError):
    status = 428
    code = "precondition-required"
    title = "Precondition required"


class CategoryAlreadyAssigned(AppError):
    code = "category-already-assigned"
    title = "Category already assigned"

    def __init__(self) -> None:
        super().__init__("The task already has this category")


class NotRecurring(Conflict):
    code = "task-not-recurring"
    title = "The task does not recur"

    def __init__(self) -> None:
        super().__init__("Only a recurring task can be skipped; give it a `recurrence` first")


class OccurrenceNotOpen(Conflict):
    code = "occurrence-not-open"
    title = "The occurrence is not open"

    def __init__(self) -> None:
        super().__init__("Only a pending or in-progress occurrence can be skipped")


class SeriesEnded(Conflict):
    code = "series-ended"
    title = "The series has no next occurrence"

    def __init__(self, rule: str) -> None:
        super().__init__(
            f"{rule} has no occurrence after this one (COUNT or UNTIL ends it): "
            "complete, cancel or delete the task instead"
        )


class ParentDeleted(Conflict):
    code = "parent-deleted"
    title = "Parent deleted"

    def __init__(self, parent_id: uuid.UUID) -> None:
        super().__init__(
            "This subtask's parent is in the trash: restore the parent first (it brings back "
            "the subtasks deleted with it)",
            extra={"parent_id": str(parent_id)},
        )


class SubtreeTooDeep(Conflict):
    code = "subtree-too-deep"
    title = "Subtasks too deep"

    def __init__(self) -> None:
        super().__init__(
            f"Restoring it would nest subtasks more than {MAX_DEPTH} levels deep (its parent "
            "moved meanwhile): move the parent up first"
        )


def item_error(location: list[str | int], message: str, kind: str, **extra: Any) -> dict[str, Any]:
    """One failed item of a batch, shaped like a field error of a 400 (`loc` from the body)."""
    loc: list[str | int] = ["body", *location]
    return {
        "loc": loc,
        "field": ".".join(map(str, location)),
        "msg": message,
        "type": kind,
        **extra,
    }


class BatchInvalid(AppError):
    code = "validation-error"
    title = "Invalid input"


class BatchConflict(Conflict):
    code = "version-conflict"
    title = "Version conflict"


def batch_rejected(errors: list[dict[str, Any]]) -> AppError:
    """Nothing of the batch was written: a 409 when every failure is a stale version (reread
    those tasks and send the batch again), else a 400; `errors` names each failed item."""
    failed = sorted({error["loc"][2] for error in errors})
    detail = (
        f"Nothing was written: {len(failed)} of the items failed "
        f"(at {', '.join(map(str, failed[:10]))}{', ...' if len(failed) > 10 else ''})"
    )
    if all(error["type"] == "version_conflict" for error in errors):
        return BatchConflict(detail, extra={"errors": errors})
    return BatchInvalid(detail, extra={"errors": errors})
