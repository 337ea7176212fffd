"""Errors specific to tasks."""

from __future__ import annotations

from common.errors import AppError, Conflict, NotFound


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
