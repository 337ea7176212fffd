"""The task representation: the columns a response shows, read in one statement, and its JSON.

Responses are rendered straight from rows with orjson rather than through ORM objects and
pydantic models: on the hot paths (list pages, single reads, the answer to every write) that is
several times less CPU, and every statement that returns a task returns it whole, categories
included, in one round trip (a correlated `jsonb_agg`, evaluated only for the rows returned).
`TaskOut` in `schemas.py` documents the same shape for OpenAPI; a unit test keeps them equal.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Sequence
from typing import Any, TypeAlias

import orjson
from sqlalchemy import ColumnElement, Integer, Row, func, literal_column, select, type_coerce
from sqlalchemy.dialects.postgresql import JSONB, aggregate_order_by
from sqlalchemy.orm import aliased

from common.models import Category, Task, TaskStatus, task_categories

_CATEGORIES = type_coerce(
    select(
        func.coalesce(
            func.jsonb_agg(
                aggregate_order_by(
                    func.jsonb_build_object(
                        literal_column("'id'"),
                        Category.id,
                        literal_column("'name'"),
                        Category.name,
                        literal_column("'color'"),
                        Category.color,
                    ),
                    Category.name,
                )
            ),
            literal_column("'[]'::jsonb"),
        )
    )
    .select_from(task_categories.join(Category, Category.id == task_categories.c.category_id))
    .where(task_categories.c.task_id == Task.id)
    .scalar_subquery(),
    JSONB(),
).label("categories")

_CHILD = aliased(Task, name="child")


def _live_children(name: str, *conditions: ColumnElement[bool]) -> ColumnElement[int]:
    """How many live subtasks the task has: an index-only scan of `ix_tasks_live_children`."""
    return (
        select(func.count())
        .select_from(_CHILD)
        .where(_CHILD.parent_id == Task.id, _CHILD.deleted_at.is_(None), *conditions)
        .scalar_subquery()
        .label(name)
    )


_SUBTASK_COUNT = _live_children("subtask_count")
_COMPLETED_SUBTASK_COUNT = _live_children(
    "completed_subtask_count", _CHILD.status == TaskStatus.COMPLETED
)

VIEW_COLUMNS: tuple[Any, ...] = (
    Task.id,
    Task.title,
    Task.description,
    Task.status,
    Task.priority,
    Task.due_date,
    Task.parent_id,
    _CATEGORIES,
    _SUBTASK_COUNT,
    _COMPLETED_SUBTASK_COUNT,
    Task.version,
    Task.created_at,
    Task.updated_at,
    Task.completed_at,
    Task.recurrence,
)
"""What a task response shows, in its order; `categories` arrives as a list of dicts (asyncpg
decodes jsonb with the engine's `json_deserializer`, orjson)."""


def _as_new(column: Any) -> Any:
    if column is _CATEGORIES:
        return type_coerce(literal_column("'[]'::jsonb"), JSONB()).label("categories")
    if column is _SUBTASK_COUNT or column is _COMPLETED_SUBTASK_COUNT:
        return type_coerce(literal_column("0"), Integer()).label(column.key)
    return column


NEW_TASK_COLUMNS = tuple(_as_new(column) for column in VIEW_COLUMNS)
"""`VIEW_COLUMNS` for INSERT ... RETURNING: a new task has no categories and no subtasks (and
a subquery in an INSERT's RETURNING is not correlated to the new row: it would count every
task's)."""

FIELDS = tuple(str(column.key) for column in VIEW_COLUMNS)
_JSON_OPTIONS = orjson.OPT_UTC_Z  # "2026-11-25T09:00:00Z", as pydantic writes UTC times


def _json_default(value: object) -> str:
    """asyncpg's own UUID class (a `uuid.UUID` in all but orjson's exact type check)."""
    if isinstance(value, uuid.UUID):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


TaskRow: TypeAlias = Row[*tuple[Any, ...]]
"""A row of `VIEW_COLUMNS` (attribute access: `row.version`, `row.due_date`, ...)."""


def to_json(document: Any) -> bytes:
    """JSON as the API writes it: UTC times with `Z`, ids as strings."""
    return orjson.dumps(document, option=_JSON_OPTIONS, default=_json_default)


def task_document(row: Sequence[Any]) -> dict[str, Any]:
    return dict(zip(FIELDS, row, strict=True))


def render_task(row: TaskRow) -> bytes:
    return to_json(task_document(row))


def render_with_next(row: TaskRow, next_occurrence: TaskRow | None) -> bytes:
    """A changed task and the occurrence its completion created (None: there is none)."""
    document = task_document(row)
    document["next_occurrence"] = (
        None if next_occurrence is None else task_document(next_occurrence)
    )
    return to_json(document)


def render_items(rows: Sequence[TaskRow]) -> bytes:
    return to_json({"items": [task_document(row) for row in rows]})


EMPTY_PAGE = b'{"items":[]'
"""How every rendered page without items begins (`items` comes first)."""


def render_page(
    rows: Sequence[TaskRow],
    *,
    total: int | None,
    page: int | None,
    limit: int,
    next_cursor: str | None,
) -> bytes:
    """A list page: at an offset (`page`, with `total` and `pages`) or after a cursor (those
    three null: counting every match for each page would cost more than the page)."""
    return to_json(
        {
            "items": [task_document(row) for row in rows],
            "total": total,
            "page": page,
            "limit": limit,
            "pages": None if total is None else math.ceil(total / limit),
            "next_cursor": next_cursor,
        }
    )
