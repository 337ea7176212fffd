"""Keyset positions: what a cursor may hold for an ordering, and the conditions after it."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy.dialects import postgresql

from common.models import TaskPriority
from common.tasks import keyset
from common.tasks.keyset import Key

BY_PRIORITY = (Key("priority", True), Key("created_at", True), Key("id", True))
BY_DUE = (Key("due_date", False), Key("id", False))
MIXED = (Key("priority", True), Key("due_date", False), Key("id", False))
ID = "7d0f0c39-6a3e-4cbe-9e9e-0f7f4f1d3c1a"


def test_a_position_round_trips() -> None:
    values = ["high", "2026-11-20T09:12:44.123456+00:00", ID]
    parsed = keyset.parse_position(values, BY_PRIORITY)
    assert parsed == (
        TaskPriority.HIGH,
        datetime(2026, 11, 20, 9, 12, 44, 123456, tzinfo=UTC),
        uuid.UUID(ID),
    )
    assert keyset.parse_position([None, ID], BY_DUE) == (None, uuid.UUID(ID))


@pytest.mark.parametrize(
    "values",
    [
        "not a list",
        [ID],
        ["high", "2026-11-20T09:12:44+00:00"],
        ["urgent", "2026-11-20T09:12:44+00:00", ID],
        ["high", "2026-11-20T09:12:44", ID],  # naive
        ["high", 1700000000, ID],
        ["high", "2026-11-20T09:12:44+00:00", "nope"],
        [None, "2026-11-20T09:12:44+00:00", ID],  # priority is never null
    ],
)
def test_a_position_that_does_not_fit_the_ordering_is_refused(values: Any) -> None:
    with pytest.raises(ValueError, match="does not fit"):
        keyset.parse_position(values, BY_PRIORITY)


def _sql(condition: Any) -> str:
    return str(condition.compile(dialect=postgresql.dialect()))


def test_one_direction_is_a_row_comparison() -> None:
    after, region = keyset.after(BY_PRIORITY, (False, False, False))
    assert _sql(after).startswith("(tasks.priority, tasks.created_at, tasks.id) <")
    assert region is None


@pytest.mark.parametrize(
    ("keys", "nulls", "region"),
    [
        (BY_DUE, (False, False), "tasks.due_date IS NULL"),
        (BY_DUE, (True, False), None),
        ((Key("due_date", True), Key("id", True)), (True, False), "tasks.due_date IS NOT NULL"),
        ((Key("due_date", True), Key("id", True)), (False, False), None),
    ],
)
def test_a_due_date_position_reads_its_region_then_the_next(
    keys: tuple[Key, ...], nulls: tuple[bool, ...], region: str | None
) -> None:
    _, following = keyset.after(keys, nulls)
    assert (None if following is None else _sql(following)) == region


def test_mixed_directions_spell_out_the_order() -> None:
    after, region = keyset.after(MIXED, (False, True, False))
    sql = _sql(after)
    assert region is None
    assert "tasks.priority < " in sql and "tasks.due_date IS NULL AND tasks.id > " in sql
