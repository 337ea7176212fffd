"""Errors specific to tasks."""

from __future__ import annotations

from common.errors import AppError, NotFound


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
