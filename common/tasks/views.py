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
from sqlalchemy import Row, func, literal_column, select, type_coerce
from sqlalchemy.dialects.postgresql import JSONB, aggregate_order_by

from common.models import Category, Task, task_categories

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

VIEW_COLUMNS = (
    Task.id,
    Task.title,
    Task.description,
    Task.status,
    Task.priority,
    Task.due_date,
    _CATEGORIES,
    Task.version,
    Task.created_at,
    Task.updated_at,
    Task.completed_at,
    Task.recurrence,
)
"""What a task response shows, in its order; `categories` arrives as a list of dicts (asyncpg
decodes jsonb with the engine's `json_deserializer`, orjson)."""

NEW_TASK_COLUMNS = tuple(
    type_coerce(literal_column("'[]'::jsonb"), JSONB()).label("categories")
    if column is _CATEGORIES
    else column
    for column in VIEW_COLUMNS
)
"""`VIEW_COLUMNS` for INSERT ... RETURNING: a new task has no categories (and a subquery in an
INSERT's RETURNING is not correlated to the new row: it would aggregate every task's)."""

FIELDS = tuple(column.key for column in VIEW_COLUMNS)
_JSON_OPTIONS = orjson.OPT_UTC_Z  # "2026-11-25T09:00:00Z", as pydantic writes UTC times


def _json_default(value: object) -> str:
    """asyncpg's own UUID class (a `uuid.UUID` in all but orjson's exact type check)."""
    if isinstance(value, uuid.UUID):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


TaskRow: TypeAlias = Row[*tuple[Any, ...]]
"""A row of `VIEW_COLUMNS` (attribute access: `row.version`, `row.due_date`, ...)."""


def task_document(row: TaskRow) -> dict[str, Any]:
    return dict(zip(FIELDS, row, strict=True))


def render_task(row: TaskRow) -> bytes:
    return orjson.dumps(task_document(row), option=_JSON_OPTIONS, default=_json_default)


def render_with_next(row: TaskRow, next_occurrence: TaskRow | None) -> bytes:
    """A changed task and the occurrence its completion created (None: there is none)."""
    document = task_document(row)
    document["next_occurrence"] = (
        None if next_occurrence is None else task_document(next_occurrence)
    )
    return orjson.dumps(document, option=_JSON_OPTIONS, default=_json_default)


def render_page(rows: Sequence[TaskRow], *, total: int, page: int, limit: int) -> bytes:
    return orjson.dumps(
        {
            "items": [task_document(row) for row in rows],
            "total": total,
            "page": page,
            "limit": limit,
            "pages": math.ceil(total / limit),
        },
        option=_JSON_OPTIONS,
        default=_json_default,
    )
