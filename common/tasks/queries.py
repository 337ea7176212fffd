"""The task list query: parsing its parameters (400 naming the parameter) and turning it into SQL.

Every condition and sort here is shaped to match an index of `tasks` (see the model):
`(user_id, created_at|updated_at|due_date|title, id)`, `(user_id, status|priority, created_at)`
and the trigram index on `lower(title || ' ' || coalesce(description, ''))`, all partial on
`deleted_at IS NULL`. `tests/integration/test_task_indexes.py` checks the plans at 50k rows.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

import orjson
from sqlalchemy import (
    ColumnElement,
    Select,
    Text,
    bindparam,
    exists,
    func,
    literal,
    literal_column,
    or_,
    select,
)
from sqlalchemy.sql.elements import BindParameter, ColumnClause, UnaryExpression

from common.errors import InvalidInput
from common.models import Task, TaskPriority, TaskStatus, task_categories
from common.tasks.views import VIEW_COLUMNS

SORT_FIELDS = ("created_at", "updated_at", "due_date", "priority", "title", "status")
OPEN_STATUSES = (TaskStatus.PENDING, TaskStatus.IN_PROGRESS)
MAX_FILTER_VALUES = 50
DEFAULT_LIMIT = 20
MAX_LIMIT = 100

# Exactly the expression of ix_tasks_search_trgm, written out so the planner can match it
# (a bound parameter for ' ' or '' would make it a different expression).
SEARCH_DOCUMENT: ColumnClause[str] = literal_column(
    "lower(tasks.title || ' ' || coalesce(tasks.description, ''))", type_=Text()
)

E = TypeVar("E", TaskStatus, TaskPriority)
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")

_SORT_COLUMNS: dict[str, Any] = {
    "created_at": Task.created_at,
    "updated_at": Task.updated_at,
    "due_date": Task.due_date,
    "priority": Task.priority,
    "title": Task.title,
    "status": Task.status,
}


@dataclass(frozen=True, slots=True)
class SortKey:
    field: str
    descending: bool

    def __str__(self) -> str:
        return ("-" if self.descending else "") + self.field


DEFAULT_SORT = (SortKey("created_at", descending=True),)


@dataclass(frozen=True, slots=True)
class TaskListQuery:
    """A normalised list request: equal queries give equal `cache_key()`s."""

    page: int = 1
    limit: int = DEFAULT_LIMIT
    statuses: tuple[TaskStatus, ...] = ()
    priorities: tuple[TaskPriority, ...] = ()
    category_ids: tuple[uuid.UUID, ...] = ()
    due_from: datetime | None = None
    due_to: datetime | None = None
    q: str | None = None
    overdue: bool | None = None
    sort: tuple[SortKey, ...] = field(default=DEFAULT_SORT)

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.limit

    @property
    def cacheable(self) -> bool:
        """`overdue` depends on the clock, not only on writes, so those pages are not cached."""
        return self.overdue is None

    def cache_key(self) -> str:
        return orjson.dumps(
            {
                "page": self.page,
                "limit": self.limit,
                "status": [str(s) for s in self.statuses],
                "priority": [str(p) for p in self.priorities],
                "category": [str(c) for c in self.category_ids],
                "due_from": self.due_from.isoformat() if self.due_from else None,
                "due_to": self.due_to.isoformat() if self.due_to else None,
                "q": self.q,
                "sort": [str(key) for key in self.sort],
            }
        ).decode()


def _split(values: Sequence[str] | None, parameter: str) -> list[str]:
    """`?status=a&status=b` and `?status=a,b` alike; empty items are ignored."""
    items = [item.strip() for value in values or () for item in value.split(",")]
    items = [item for item in items if item]
    if len(items) > MAX_FILTER_VALUES:
        raise InvalidInput(f"At most {MAX_FILTER_VALUES} values", field=parameter, location="query")
    return items


def _enum_values(values: Sequence[str] | None, enum: type[E], parameter: str) -> tuple[E, ...]:
    chosen: set[E] = set()
    for item in _split(values, parameter):
        try:
            chosen.add(enum(item))
        except ValueError:
            allowed = ", ".join(member.value for member in enum)
            raise InvalidInput(
                f"Unknown value {item[:50]!r}; expected one of: {allowed}",
                field=parameter,
                location="query",
            ) from None
    return tuple(sorted(chosen, key=list(enum).index))


def _uuids(values: Sequence[str] | None, parameter: str) -> tuple[uuid.UUID, ...]:
    chosen: set[uuid.UUID] = set()
    for item in _split(values, parameter):
        try:
            chosen.add(uuid.UUID(item))
        except ValueError:
            raise InvalidInput(
                f"{item[:50]!r} is not a valid UUID", field=parameter, location="query"
            ) from None
    return tuple(sorted(chosen))


def _sort_keys(values: Sequence[str] | None) -> tuple[SortKey, ...]:
    keys: list[SortKey] = []
    for item in _split(values, "sort"):
        name = item.removeprefix("-")
        if name not in SORT_FIELDS:
            raise InvalidInput(
                f"Unknown sort key {name[:50]!r}; expected: {', '.join(SORT_FIELDS)},"
                " each optionally prefixed with '-'",
                field="sort",
                location="query",
            )
        if any(key.field == name for key in keys):
            raise InvalidInput(f"Sort key {name!r} is repeated", field="sort", location="query")
        keys.append(SortKey(name, descending=item.startswith("-")))
    return tuple(keys) or DEFAULT_SORT


def parse_list_query(
    *,
    page: int = 1,
    limit: int = DEFAULT_LIMIT,
    status: Sequence[str] | None = None,
    priority: Sequence[str] | None = None,
    category_id: Sequence[str] | None = None,
    due_from: datetime | None = None,
    due_to: datetime | None = None,
    q: str | None = None,
    overdue: bool | None = None,
    sort: Sequence[str] | None = None,
) -> TaskListQuery:
    """Validate and normalise list parameters; errors are 400s naming the parameter."""
    if due_from is not None and due_to is not None and due_from > due_to:
        raise InvalidInput("due_from must not be after due_to", field="due_from", location="query")
    search = q.strip() if q is not None else None
    if search and _CONTROL.search(search):
        raise InvalidInput("Control characters are not allowed", field="q", location="query")
    return TaskListQuery(
        page=page,
        limit=limit,
        statuses=_enum_values(status, TaskStatus, "status"),
        priorities=_enum_values(priority, TaskPriority, "priority"),
        category_ids=_uuids(category_id, "category_id"),
        due_from=due_from,
        due_to=due_to,
        q=search or None,
        overdue=overdue,
        sort=_sort_keys(sort),
    )


def escape_like(text: str) -> str:
    """Make `%`, `_` and the escape character itself literal (backslash: PostgreSQL's default)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _open_statuses() -> BindParameter[Any]:
    """Rendered as literals, so that even a generic plan of a prepared statement can prove the
    predicate of the partial index `ix_tasks_user_open_due`."""
    return bindparam("open_statuses", list(OPEN_STATUSES), expanding=True, literal_execute=True)


def _conditions(user_id: uuid.UUID, query: TaskListQuery) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = [Task.user_id == user_id, Task.deleted_at.is_(None)]
    if query.statuses:
        conditions.append(Task.status.in_(query.statuses))
    if query.priorities:
        conditions.append(Task.priority.in_(query.priorities))
    if query.due_from is not None:
        conditions.append(Task.due_date >= query.due_from)
    if query.due_to is not None:
        conditions.append(Task.due_date <= query.due_to)
    if query.category_ids:
        conditions.append(
            exists().where(
                task_categories.c.task_id == Task.id,
                task_categories.c.category_id.in_(query.category_ids),
            )
        )
    if query.q is not None:
        pattern = "%" + escape_like(query.q) + "%"
        conditions.append(SEARCH_DOCUMENT.like(func.lower(literal(pattern))))
    if query.overdue is True:
        conditions.append(Task.due_date < func.statement_timestamp())
        conditions.append(Task.status.in_(_open_statuses()))
    elif query.overdue is False:
        conditions.append(
            or_(
                Task.due_date.is_(None),
                Task.due_date >= func.statement_timestamp(),
                Task.status.not_in(_open_statuses()),
            )
        )
    return conditions


def order_by(sort: Sequence[SortKey]) -> list[UnaryExpression[Any]]:
    """The requested keys, then tie-breakers in the direction of the last key: `created_at`
    after `priority` or `status` (their indexes continue with it), and always `id`, so pages
    neither repeat nor skip rows."""
    keys = list(sort)
    last = keys[-1]
    if last.field in ("priority", "status") and all(k.field != "created_at" for k in keys):
        keys.append(SortKey("created_at", last.descending))
    columns = [_SORT_COLUMNS[key.field] for key in keys] + [Task.id]
    directions = [key.descending for key in keys] + [last.descending]
    return [
        column.desc() if descending else column.asc()
        for column, descending in zip(columns, directions, strict=True)
    ]


def page_statement(user_id: uuid.UUID, query: TaskListQuery) -> Select[*tuple[Any, ...]]:
    return (
        select(*VIEW_COLUMNS)
        .where(*_conditions(user_id, query))
        .order_by(*order_by(query.sort))
        .limit(query.limit)
        .offset(query.offset)
    )


def count_statement(user_id: uuid.UUID, query: TaskListQuery) -> Select[int]:
    return select(func.count()).select_from(Task).where(*_conditions(user_id, query))
