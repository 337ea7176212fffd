"""Keyset pages of the task list: the rows after the last one a client saw, in any sort.

A position is the values of the sort keys (with their tie-breakers, `id` last) of the last row
of a page. "After it" is written so that each index of the list can serve it:

* one direction, no nullable key: a row comparison, `(created_at, id) < (:a0, :a1)`, which a
  B-tree range scan answers from the position on;
* `due_date` first (the only nullable key): NULLs sort after every date ascending and before
  them descending, so a position lies in one of two regions (dated, undated). The page reads the
  rest of its region by a row comparison, and only when that runs out a second statement reads
  the next region from its start (`tail`);
* mixed directions (`-priority,due_date`): the general lexicographic OR. No index has that
  order anyway: the database sorts the rows after the position, as it sorts the first page.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, bindparam, false, or_, tuple_
from sqlalchemy.sql.elements import UnaryExpression

from common.models import Task, TaskPriority, TaskStatus


@dataclass(frozen=True, slots=True)
class _Field:
    column: Any
    nullable: bool
    parse: Callable[[Any], Any]


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("not text")
    return value


def _moment(value: Any) -> datetime:
    moment = datetime.fromisoformat(_text(value))
    if moment.tzinfo is None:
        raise ValueError("naive")
    return moment


FIELDS: dict[str, _Field] = {
    "created_at": _Field(Task.created_at, nullable=False, parse=_moment),
    "updated_at": _Field(Task.updated_at, nullable=False, parse=_moment),
    "due_date": _Field(Task.due_date, nullable=True, parse=_moment),
    "priority": _Field(Task.priority, nullable=False, parse=lambda v: TaskPriority(_text(v))),
    "title": _Field(Task.title, nullable=False, parse=_text),
    "status": _Field(Task.status, nullable=False, parse=lambda v: TaskStatus(_text(v))),
    "id": _Field(Task.id, nullable=False, parse=lambda v: uuid.UUID(_text(v))),
}


@dataclass(frozen=True, slots=True)
class Key:
    """One key of the full ordering: a field of the task and its direction."""

    field: str
    descending: bool

    @property
    def column(self) -> Any:
        return FIELDS[self.field].column

    @property
    def nullable(self) -> bool:
        return FIELDS[self.field].nullable


def order_by(keys: Sequence[Key]) -> list[UnaryExpression[Any]]:
    return [key.column.desc() if key.descending else key.column.asc() for key in keys]


def position_of(row: Any, keys: Sequence[Key]) -> list[Any]:
    """The position of a row (a task view) in this ordering, as JSON-ready values."""
    values = []
    for key in keys:
        value = getattr(row, key.field)
        if isinstance(value, datetime):
            value = value.isoformat()
        elif isinstance(value, uuid.UUID | TaskPriority | TaskStatus):
            value = str(value)
        values.append(value)
    return values


def parse_position(values: Any, keys: Sequence[Key]) -> tuple[Any, ...]:
    """The bind values of a position; ValueError when it does not fit the ordering."""
    unfit = ValueError("the position does not fit the ordering")
    if not isinstance(values, list) or len(values) != len(keys):
        raise unfit
    parsed = []
    for key, value in zip(keys, values, strict=True):
        if value is None and not key.nullable:
            raise unfit
        try:
            parsed.append(None if value is None else FIELDS[key.field].parse(value))
        except ValueError:
            raise unfit from None
    return tuple(parsed)


def parameters(position: Sequence[Any]) -> dict[str, Any]:
    return {f"after_{index}": value for index, value in enumerate(position)}


def _values(keys: Sequence[Key], start: int = 0) -> list[Any]:
    return [
        bindparam(f"after_{index}", type_=key.column.type)
        for index, key in enumerate(keys[start:], start)
    ]


def _row_after(keys: Sequence[Key], values: Sequence[Any]) -> ColumnElement[bool]:
    row, position = tuple_(*(key.column for key in keys)), tuple_(*values)
    return row < position if keys[0].descending else row > position


def _lexicographic(keys: Sequence[Key], nulls: Sequence[bool]) -> ColumnElement[bool]:
    values = _values(keys)
    terms = []
    for index, key in enumerate(keys):
        equal = [
            earlier.column.is_(None) if null else earlier.column == value
            for earlier, value, null in zip(keys[:index], values, nulls, strict=False)
        ]
        beyond: ColumnElement[bool] | None
        if key.descending:
            beyond = key.column.is_not(None) if nulls[index] else key.column < values[index]
        elif nulls[index]:
            beyond = None  # nothing follows NULL in ascending order
        else:
            beyond = key.column > values[index]
            if key.nullable:
                beyond = or_(beyond, key.column.is_(None))
        if beyond is not None:
            terms.append(and_(*equal, beyond))
    return or_(*terms) if terms else false()


def after(
    keys: Sequence[Key], nulls: Sequence[bool]
) -> tuple[ColumnElement[bool], ColumnElement[bool] | None]:
    """The condition for rows after a position (bound as `after_<i>`; `nulls` says which of
    its values are NULL), and the region that follows once those run out (None: none, or the
    condition already reaches it)."""
    first = keys[0]
    uniform = len({key.descending for key in keys}) == 1
    if not uniform or any(key.nullable for key in keys[1:]):
        return _lexicographic(keys, nulls), None
    if not first.nullable:
        return _row_after(keys, _values(keys)), None
    if nulls[0]:
        undated = and_(first.column.is_(None), _row_after(keys[1:], _values(keys, 1)))
        return undated, first.column.is_not(None) if first.descending else None
    return _row_after(keys, _values(keys)), None if first.descending else first.column.is_(None)
