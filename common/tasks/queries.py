"""The task list query: parsing its parameters (400 naming the parameter) and turning it into SQL.

Every condition and sort here is shaped to match an index of `tasks` (see the model):
`(user_id, created_at|updated_at|due_date|title, id)`, `(user_id, status|priority, created_at)`
and the per-user trigram index on `(user_id, lower(title || ' ' || coalesce(description, '')))`
(btree_gin), all partial on `deleted_at IS NULL`. `tests/integration/test_task_indexes.py` and
`test_search_index.py` check the plans at 50k rows.
"""

from __future__ import annotations

import functools
import hashlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
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
from sqlalchemy.sql.elements import BindParameter, ColumnClause

from common.errors import InvalidInput
from common.models import OPEN_STATUSES, Task, TaskPriority, TaskStatus, task_categories
from common.models.text import single_line
from common.tasks import keyset
from common.tasks.keyset import Key
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


@dataclass(frozen=True, slots=True)
class SortKey:
    field: str
    descending: bool

    def __str__(self) -> str:
        return ("-" if self.descending else "") + self.field


DEFAULT_SORT = (SortKey("created_at", descending=True),)


@dataclass(frozen=True, slots=True)
class TaskListQuery:
    """A normalised list request: equal queries give equal `cache_key()`s. With a `cursor`
    the page is the one after the cursor's position (keyset), and `page` is not used."""

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
    parent_id: uuid.UUID | None = None
    top_level: bool | None = None
    cursor: str | None = None

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.limit

    @property
    def ordering(self) -> tuple[Key, ...]:
        return ordering(self.sort)

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
            {"page": self.page, "limit": self.limit, "cursor": self.cursor, **self._selection()}
        ).decode()

    def fingerprint(self) -> str:
        """Which tasks in which order (not which page of them): a cursor is valid only for
        the query that issued it."""
        selection = orjson.dumps(self._selection(), option=orjson.OPT_SORT_KEYS)
        return hashlib.blake2b(selection, digest_size=8).hexdigest()

    def _selection(self) -> dict[str, Any]:
        return {
            "status": [str(s) for s in self.statuses],
            "priority": [str(p) for p in self.priorities],
            "category": [str(c) for c in self.category_ids],
            # One instant, one key: 11:00+01:00 is 10:00Z.
            "due_from": self.due_from.astimezone(UTC).isoformat() if self.due_from else None,
            "due_to": self.due_to.astimezone(UTC).isoformat() if self.due_to else None,
            "q": self.q,
            "sort": [str(key) for key in self.sort],
            "parent": str(self.parent_id) if self.parent_id else None,
            "top_level": self.top_level,
        }


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
    page: int | None = None,
    limit: int = DEFAULT_LIMIT,
    status: Sequence[str] | None = None,
    priority: Sequence[str] | None = None,
    category_id: Sequence[str] | None = None,
    due_from: datetime | None = None,
    due_to: datetime | None = None,
    q: str | None = None,
    overdue: bool | None = None,
    sort: Sequence[str] | None = None,
    parent_id: uuid.UUID | None = None,
    top_level: bool | None = None,
    cursor: str | None = None,
) -> TaskListQuery:
    """Validate and normalise list parameters; errors are 400s naming the parameter. The
    cursor is only carried here: `common.tasks.reader` opens it (it is signed per user)."""
    if due_from is not None and due_to is not None and due_from > due_to:
        raise InvalidInput("due_from must not be after due_to", field="due_from", location="query")
    if page is not None and cursor is not None:
        raise InvalidInput("Send either page or cursor, not both", field="cursor", location="query")
    if parent_id is not None and top_level is not None:
        raise InvalidInput(
            "parent_id already says which level: leave top_level out",
            field="top_level",
            location="query",
        )
    search = _search_text(q)
    return TaskListQuery(
        page=page or 1,
        limit=limit,
        statuses=_enum_values(status, TaskStatus, "status"),
        priorities=_enum_values(priority, TaskPriority, "priority"),
        category_ids=_uuids(category_id, "category_id"),
        due_from=due_from,
        due_to=due_to,
        q=search,
        overdue=overdue,
        sort=_sort_keys(sort),
        parent_id=parent_id,
        top_level=top_level,
        cursor=cursor,
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
class Position:
    """Where a keyset page starts: the sort-key values of the last row seen (bound as
    `after_<i>`), from a cursor that `common.tasks.reader` opened."""

    values: tuple[Any, ...]

    @property
    def nulls(self) -> tuple[bool, ...]:
        return tuple(value is None for value in self.values)


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
    parent: bool
    top_level: bool | None
    after: tuple[bool, ...] | None
    """A keyset page: which values of its position are NULL. None: an offset page."""

    @classmethod
    def of(cls, query: TaskListQuery, position: Position | None) -> _Shape:
        return cls(
            statuses=bool(query.statuses),
            priorities=bool(query.priorities),
            category_ids=bool(query.category_ids),
            due_from=query.due_from is not None,
            due_to=query.due_to is not None,
            q=query.q is not None,
            overdue=query.overdue,
            sort=query.sort,
            parent=query.parent_id is not None,
            top_level=query.top_level,
            after=None if position is None else position.nulls,
        )


def list_parameters(
    user_id: uuid.UUID, query: TaskListQuery, position: Position | None = None
) -> dict[str, Any]:
    """The values for `page_statement`, `tail_statement` and `count_statement`. A keyset page
    asks for one row more than it shows: that row says whether another page follows."""
    parameters = {
        "user_id": user_id,
        "statuses": list(query.statuses),
        "priorities": list(query.priorities),
        "category_ids": list(query.category_ids),
        "due_from": query.due_from,
        "due_to": query.due_to,
        "pattern": None if query.q is None else "%" + escape_like(query.q) + "%",
        "parent_id": query.parent_id,
        "limit": query.limit if position is None else query.limit + 1,
        "offset": query.offset if position is None else 0,
    }
    if position is not None:
        parameters.update(keyset.parameters(position.values))
    return parameters


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
    if shape.parent:
        conditions.append(Task.parent_id == bindparam("parent_id"))
    if shape.top_level is not None:
        top = Task.parent_id.is_(None)
        conditions.append(top if shape.top_level else ~top)
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


_LIMIT = bindparam("limit", type_=Integer())
_OFFSET = bindparam("offset", type_=Integer())


def ordering(sort: Sequence[SortKey]) -> tuple[Key, ...]:
    """The requested keys, then tie-breakers in the direction of the last key: `created_at`
    after `priority` or `status` (their indexes continue with it), and always `id`, so pages
    neither repeat nor skip rows."""
    keys = [Key(key.field, key.descending) for key in sort]
    last = keys[-1]
    if last.field in ("priority", "status") and all(k.field != "created_at" for k in keys):
        keys.append(Key("created_at", last.descending))
    keys.append(Key("id", last.descending))
    return tuple(keys)


def page_statement(query: TaskListQuery, position: Position | None = None) -> Select[Any]:
    """One page of tasks of `query`'s shape: at an offset, or after `position` (a keyset
    page); execute with `list_parameters`."""
    return _page_statement(_Shape.of(query, position))


def tail_statement(query: TaskListQuery, position: Position) -> Select[Any] | None:
    """The first rows of the region after `position`'s (see `common.tasks.keyset`), for a
    keyset page that ran out of its own; None when nothing follows that region."""
    return _tail_statement(_Shape.of(query, position))


def count_statement(query: TaskListQuery) -> Select[int]:
    """How many tasks match `query`'s shape; execute with `list_parameters`."""
    return _count_statement(_Shape.of(query, None))


@functools.lru_cache(maxsize=512)
def _page_statement(shape: _Shape) -> Select[Any]:
    keys = ordering(shape.sort)
    conditions = _conditions(shape)
    statement = select(*VIEW_COLUMNS).order_by(*keyset.order_by(keys))
    if shape.after is None:
        return statement.where(*conditions).limit(_LIMIT).offset(_OFFSET)
    after, _ = keyset.after(keys, shape.after)
    return statement.where(*conditions, after).limit(_LIMIT)


@functools.lru_cache(maxsize=512)
def _tail_statement(shape: _Shape) -> Select[Any] | None:
    assert shape.after is not None
    keys = ordering(shape.sort)
    _, region = keyset.after(keys, shape.after)
    if region is None:
        return None
    return (
        select(*VIEW_COLUMNS)
        .where(*_conditions(shape), region)
        .order_by(*keyset.order_by(keys))
        .limit(_LIMIT)
    )


@functools.lru_cache(maxsize=512)
def _count_statement(shape: _Shape) -> Select[int]:
    return select(func.count()).select_from(Task).where(*_conditions(shape))
