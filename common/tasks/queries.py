"""The task list query: parsing its parameters (400 naming the parameter) and turning it into SQL.

Every condition and sort here is shaped to match an index of `tasks` (see the model):
`(user_id, created_at|updated_at|due_date|title, id)`, `(user_id, status|priority, created_at)`
and the per-user trigram index on `(user_id, lower(title || ' ' || coalesce(description, '')))`
(btree_gin), all partial on `deleted_at IS NULL`. `tests/integration/test_task_indexes.py` and
`test_search_index.py` check the plans at 50k rows.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

import orjson
from sqlalchemy import (
    ColumnElement,
    Integer,
    Select,
    Text,
    bindparam,
    exists,
    func,
    literal_column,
    or_,
    select,
)
from sqlalchemy.sql.elements import BindParameter, ColumnClause, UnaryExpression

from common.errors import InvalidInput
from common.models import OPEN_STATUSES, Task, TaskPriority, TaskStatus, task_categories
from common.models.text import single_line
from common.tasks.views import VIEW_COLUMNS

SORT_FIELDS = ("created_at", "updated_at", "due_date", "priority", "title", "status")
MAX_FILTER_VALUES = 50
DEFAULT_LIMIT = 20
MAX_LIMIT = 100
MIN_SEARCH_LENGTH = 3
"""A trigram index can only narrow a search of at least three characters."""

# Exactly the expression of ix_tasks_user_search, written out so the planner can match it
# (a bound parameter for ' ' or '' would make it a different expression).
SEARCH_DOCUMENT: ColumnClause[str] = literal_column(
    "lower(tasks.title || ' ' || coalesce(tasks.description, ''))", type_=Text()
)

E = TypeVar("E", TaskStatus, TaskPriority)

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
        """`overdue` depends on the clock, not only on writes, so those pages are not cached.
        Nor are pages whose time bounds are not whole minutes: each distinct instant would be
        an entry of its own, endless variants of one page; calendars send whole minutes."""
        return self.overdue is None and all(
            bound is None or (bound.second == 0 and bound.microsecond == 0)
            for bound in (self.due_from, self.due_to)
        )

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
    search = _search_text(q)
    return TaskListQuery(
        page=page,
        limit=limit,
        statuses=_enum_values(status, TaskStatus, "status"),
        priorities=_enum_values(priority, TaskPriority, "priority"),
        category_ids=_uuids(category_id, "category_id"),
        due_from=due_from,
        due_to=due_to,
        q=search,
        overdue=overdue,
        sort=_sort_keys(sort),
    )


def _search_text(q: str | None) -> str | None:
    """`q` trimmed; ASCII text lower-cased here as the SQL would (`lower()`), so `The`, `the `
    and `THE` are one query and one cache entry. Other text is left for PostgreSQL to fold:
    its `lower()` follows the database's locale, which Python cannot reproduce exactly."""
    search = q.strip() if q is not None else ""
    if not search:
        return None
    try:
        single_line(search)
    except ValueError as exc:
        raise InvalidInput(str(exc), field="q", location="query") from None
    if len(search) < MIN_SEARCH_LENGTH:
        raise InvalidInput(
            f"Search for at least {MIN_SEARCH_LENGTH} characters", field="q", location="query"
        )
    return search.lower() if search.isascii() else search


def escape_like(text: str) -> str:
    """Make `%`, `_` and the escape character itself literal (backslash: PostgreSQL's default)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _open_statuses() -> BindParameter[Any]:
    """Rendered as literals, so that even a generic plan of a prepared statement can prove the
    predicate of the partial index `ix_tasks_user_open_due`."""
    return bindparam("open_statuses", list(OPEN_STATUSES), expanding=True, literal_execute=True)


@dataclass(frozen=True, slots=True)
class _Shape:
    """Which conditions and order a list query has, not their values: the statements of one
    shape are built (and their SQLAlchemy cache keys computed) once, then only executed with
    `list_parameters`. A handful of shapes carry nearly all the traffic."""

    statuses: bool
    priorities: bool
    category_ids: bool
    due_from: bool
    due_to: bool
    q: bool
    overdue: bool | None
    sort: tuple[SortKey, ...]

    @classmethod
    def of(cls, query: TaskListQuery) -> _Shape:
        return cls(
            statuses=bool(query.statuses),
            priorities=bool(query.priorities),
            category_ids=bool(query.category_ids),
            due_from=query.due_from is not None,
            due_to=query.due_to is not None,
            q=query.q is not None,
            overdue=query.overdue,
            sort=query.sort,
        )


def list_parameters(user_id: uuid.UUID, query: TaskListQuery) -> dict[str, Any]:
    """The values for `page_statement(query)` and `count_statement(query)`."""
    return {
        "user_id": user_id,
        "statuses": list(query.statuses),
        "priorities": list(query.priorities),
        "category_ids": list(query.category_ids),
        "due_from": query.due_from,
        "due_to": query.due_to,
        "pattern": None if query.q is None else "%" + escape_like(query.q) + "%",
        "limit": query.limit,
        "offset": query.offset,
    }


def _conditions(shape: _Shape) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = [
        Task.user_id == bindparam("user_id"),
        Task.deleted_at.is_(None),
    ]
    if shape.statuses:
        conditions.append(Task.status.in_(bindparam("statuses", expanding=True)))
    if shape.priorities:
        conditions.append(Task.priority.in_(bindparam("priorities", expanding=True)))
    if shape.due_from:
        conditions.append(Task.due_date >= bindparam("due_from"))
    if shape.due_to:
        conditions.append(Task.due_date <= bindparam("due_to"))
    if shape.category_ids:
        conditions.append(
            exists().where(
                task_categories.c.task_id == Task.id,
                task_categories.c.category_id.in_(bindparam("category_ids", expanding=True)),
            )
        )
    if shape.q:
        conditions.append(SEARCH_DOCUMENT.like(func.lower(bindparam("pattern", type_=Text()))))
    if shape.overdue is True:
        conditions.append(Task.due_date < func.statement_timestamp())
        conditions.append(Task.status.in_(_open_statuses()))
    elif shape.overdue is False:
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


def page_statement(query: TaskListQuery) -> Select[*tuple[Any, ...]]:
    """One page of tasks of `query`'s shape; execute with `list_parameters`."""
    return _page_statement(_Shape.of(query))


def count_statement(query: TaskListQuery) -> Select[int]:
    """How many tasks match `query`'s shape; execute with `list_parameters`."""
    return _count_statement(_Shape.of(query))


@functools.lru_cache(maxsize=512)
def _page_statement(shape: _Shape) -> Select[*tuple[Any, ...]]:
    return (
        select(*VIEW_COLUMNS)
        .where(*_conditions(shape))
        .order_by(*order_by(shape.sort))
        .limit(bindparam("limit", type_=Integer()))
        .offset(bindparam("offset", type_=Integer()))
    )


@functools.lru_cache(maxsize=512)
def _count_statement(shape: _Shape) -> Select[int]:
    return select(func.count()).select_from(Task).where(*_conditions(shape))
