"""Errors specific to tasks."""

from __future__ import annotations

import uuid

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
