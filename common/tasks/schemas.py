"""Task representations as pydantic models: the documented shape (OpenAPI) of what
`common.tasks.views` renders. Responses are rendered there, from rows, because their bytes are
what the response cache stores and a cache warmer outside the API must produce the same bytes."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from common.models import TaskPriority, TaskStatus


class TaskCategoryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID = Field(examples=["5b0c6a1e-4d0f-4c8e-9a55-3f1f2b8f9e10"])
    name: str = Field(examples=["Work"])
    color: str | None = Field(examples=["#1E90FF"])


class TaskOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID = Field(examples=["7d0f0c39-6a3e-4cbe-9e9e-0f7f4f1d3c1a"])
    title: str = Field(examples=["Write the quarterly report"])
    description: str | None = Field(examples=["Numbers from finance first"])
    status: TaskStatus = Field(examples=["in_progress"])
    priority: TaskPriority = Field(examples=["high"])
    due_date: datetime | None = Field(examples=["2026-12-01T17:00:00Z"])
    parent_id: uuid.UUID | None = Field(
        description="The parent of a subtask; null for a top-level task", examples=[None]
    )
    categories: list[TaskCategoryOut] = Field(
        description="The task's categories, by name", examples=[[]]
    )
    subtask_count: int = Field(
        description="Live direct subtasks (derived: computed when read)", examples=[3]
    )
    completed_subtask_count: int = Field(
        description="Of those, how many are `completed` (derived: computed when read)",
        examples=[1],
    )
    version: int = Field(
        description="Bumped by every change; send it back in PATCH (or use the ETag)",
        examples=[3],
    )
    created_at: datetime = Field(examples=["2026-11-20T09:12:44Z"])
    updated_at: datetime = Field(examples=["2026-11-24T16:03:10Z"])
    completed_at: datetime | None = Field(
        description="When the status last became `completed`; null otherwise", examples=[None]
    )
    recurrence: str | None = Field(
        description="The task's RFC 5545 rule (canonical form) when it recurs; null otherwise",
        examples=["FREQ=WEEKLY;BYDAY=MO,TH"],
    )


class TaskWithNext(TaskOut):
    next_occurrence: TaskOut | None = Field(
        default=None,
        description="Only in answers about a recurring task: the occurrence that completing "
        "it created (also when the request is repeated), else null",
        examples=[None],
    )


class TaskPage(BaseModel):
    items: list[TaskOut]
    total: int | None = Field(
        description="Tasks matching the filters, on every page; null on a cursor page",
        examples=[42],
    )
    page: int | None = Field(examples=[1], description="null on a cursor page")
    limit: int = Field(examples=[20])
    pages: int | None = Field(
        description="Number of pages at this limit (0 when none match); null on a cursor page",
        examples=[3],
    )
    next_cursor: str | None = Field(
        description="Send it as `cursor` (with the same filters and sort) for the rows after "
        "this page; null when none follow",
        examples=["eyJrIjoidGFza3MiLCJ1Ijoi..."],
    )


class TrashedTaskOut(TaskOut):
    deleted_at: datetime = Field(
        description="When it was deleted; it is purged `PURGE_RETENTION_DAYS` later",
        examples=["2026-11-24T16:03:10Z"],
    )


class TrashPage(BaseModel):
    items: list[TrashedTaskOut] = Field(description="Newest deletion first")
    next_cursor: str | None = Field(
        description="Send it as `cursor` for the next page; null on the last", examples=[None]
    )
