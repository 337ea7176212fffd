"""Task request bodies (responses are rendered in `common.tasks.schemas`, re-exported here)."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, AwareDatetime, BaseModel, BeforeValidator, Field

from api.schemas.base import RequestModel, not_null, refuse_null
from common.models import TaskPriority, TaskStatus
from common.models.text import multi_line, single_line
from common.tasks.batch import MAX_BATCH
from common.tasks.schemas import TaskCategoryOut, TaskOut, TaskPage, TaskWithNext, TrashPage

__all__ = [
    "DueDate",
    "QueryDateTime",
    "TaskBatchCreate",
    "TaskBatchDelete",
    "TaskBatchEdit",
    "TaskBatchOut",
    "TaskBatchUpdate",
    "TaskCategoryOut",
    "TaskCreate",
    "TaskOut",
    "TaskPage",
    "TaskUpdate",
    "TaskWithNext",
    "TrashPage",
]


def _as_utc(value: datetime) -> datetime:
    """Normalise to UTC; offsets that push a date outside years 1-9999 are refused."""
    try:
        return value.astimezone(UTC)
    except OverflowError as exc:
        raise ValueError("Date out of range") from exc


_DATE_TIME_START = re.compile(r"^\d{4}-\d{2}-\d{2}")


def _date_time_text(value: Any) -> Any:
    """Only ISO 8601 text is a date-time: pydantic would otherwise read a number, or a string
    of digits, as a Unix timestamp (`1893456000` -> 2030-01-01, `0.5` -> 1970)."""
    if not isinstance(value, str) or not _DATE_TIME_START.match(value.strip()):
        raise ValueError("Expected an ISO 8601 date-time with a time zone")
    return value


def _plus_from_query(value: Any) -> Any:
    """An unencoded `+` in a query string arrives as a space: `...T10:00:00 02:00`."""
    value = _date_time_text(value)
    return re.sub(r" (\d{2}:?\d{2})$", r"+\1", value.strip())


Title = Annotated[
    str,
    Field(min_length=3, max_length=200, examples=["Write the quarterly report"]),
    AfterValidator(single_line),
]
Description = Annotated[
    str,
    Field(max_length=2000, examples=["Numbers from finance first"]),
    AfterValidator(multi_line),
]
DueDate = Annotated[
    AwareDatetime,
    BeforeValidator(_date_time_text),
    AfterValidator(_as_utc),
    Field(
        description="ISO 8601 with a time zone (`Z` or an offset); naive times are refused. "
        "Must be in the future when set or changed.",
        examples=["2026-12-01T17:00:00Z"],
    ),
]
Recurrence = Annotated[
    str,
    Field(
        max_length=255,
        description="An RFC 5545 RRULE: FREQ=DAILY|WEEKLY|MONTHLY|YEARLY with INTERVAL, BYDAY, "
        "BYMONTHDAY, COUNT or UNTIL, evaluated in your profile's time zone from the due date "
        "(which must be an occurrence). Completing the task creates the next occurrence.",
        examples=["FREQ=WEEKLY;BYDAY=MO,TH"],
    ),
]
QueryDateTime = Annotated[AwareDatetime, BeforeValidator(_plus_from_query), AfterValidator(_as_utc)]
Version = Annotated[int, Field(strict=True, ge=1, le=2**31 - 1, examples=[3])]
"""Strict: `true` or `1.0` is not a version."""


ParentId = Annotated[
    uuid.UUID,
    Field(
        description="Makes the task a subtask of this one of your live tasks; at most three "
        "levels, never under itself or its own subtasks (400 otherwise)",
        examples=["5b0c6a1e-4d0f-4c8e-9a55-3f1f2b8f9e10"],
    ),
]


class TaskCreate(RequestModel):
    title: Title
    description: Description | None = None
    due_date: DueDate | None = None
    priority: TaskPriority = Field(default=TaskPriority.MEDIUM, examples=["high"])
    status: TaskStatus = Field(default=TaskStatus.PENDING, examples=["pending"])
    recurrence: Recurrence | None = None
    parent_id: ParentId | None = None


class TaskUpdate(RequestModel):
    """Only the fields sent change; `description`, `due_date` and `parent_id` may be set to
    null, the others may be left out but not sent as null (the schema says so: no `null` in
    them)."""

    title: Title | None = Field(default=None, json_schema_extra=not_null)
    description: Description | None = None
    due_date: DueDate | None = None
    priority: TaskPriority | None = Field(
        default=None, examples=["low"], json_schema_extra=not_null
    )
    status: TaskStatus | None = Field(
        default=None, examples=["completed"], json_schema_extra=not_null
    )
    recurrence: Recurrence | None = Field(
        default=None, description="A new rule starts a new series at the due date; null stops it"
    )
    parent_id: ParentId | None = Field(
        default=None, description="A new parent; null makes the task a top-level one"
    )
    version: Version | None = Field(
        default=None,
        description="The version you read. Required unless an If-Match header is sent; "
        "a stale one gives 409 with `current_version`.",
    )

    _refuse_null = refuse_null("title", "priority", "status")

    def changes(self) -> dict[str, Any]:
        return self.model_dump(exclude_unset=True, exclude={"version"})


class TaskBatchCreate(RequestModel):
    items: list[TaskCreate] = Field(
        min_length=1,
        max_length=MAX_BATCH,
        description=f"1 to {MAX_BATCH} tasks, as `POST /tasks` takes them",
    )


class TaskBatchEdit(TaskUpdate):
    """One item of a batch update: the task, the version you read, and what changes."""

    id: uuid.UUID = Field(examples=["7d0f0c39-6a3e-4cbe-9e9e-0f7f4f1d3c1a"])
    version: Version = Field(description="The version you read; a stale one fails the batch")

    def changes(self) -> dict[str, Any]:
        return self.model_dump(exclude_unset=True, exclude={"version", "id"})


class TaskBatchUpdate(RequestModel):
    items: list[TaskBatchEdit] = Field(
        min_length=1, max_length=MAX_BATCH, description=f"1 to {MAX_BATCH} edits, each task once"
    )


class TaskBatchDelete(RequestModel):
    ids: list[uuid.UUID] = Field(
        min_length=1, max_length=MAX_BATCH, description=f"1 to {MAX_BATCH} task ids, each once"
    )


class TaskBatchOut(BaseModel):
    items: list[TaskOut] = Field(description="In the order of the request's items")
