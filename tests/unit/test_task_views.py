"""The hand-written task rendering matches the documented `TaskOut` shape, byte for byte in the
places clients parse (field order, UTC times with `Z`, ids as strings)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from common.models import TaskPriority, TaskStatus
from common.tasks.schemas import TaskOut, TaskPage, TaskWithNext
from common.tasks.views import FIELDS, render_page, render_task, render_with_next


class DriverUUID(uuid.UUID):
    """Like asyncpg's own UUID class: a `uuid.UUID`, but not exactly one."""


def _row(**overrides: Any) -> tuple[Any, ...]:
    values: dict[str, Any] = {
        "id": DriverUUID("7d0f0c39-6a3e-4cbe-9e9e-0f7f4f1d3c1a"),
        "title": "Write the report",
        "description": None,
        "status": TaskStatus.IN_PROGRESS,
        "priority": TaskPriority.HIGH,
        "due_date": datetime(2026, 12, 1, 17, 0, tzinfo=UTC),
        "parent_id": DriverUUID("5b0c6a1e-4d0f-4c8e-9a55-3f1f2b8f9e10"),
        "categories": [{"id": str(uuid.uuid4()), "name": "Work", "color": None}],
        "subtask_count": 2,
        "completed_subtask_count": 1,
        "version": 3,
        "created_at": datetime(2026, 11, 20, 9, 12, 44, 123456, tzinfo=UTC),
        "updated_at": datetime(2026, 11, 24, 16, 3, 10, tzinfo=UTC),
        "completed_at": None,
        "recurrence": None,
    }
    values.update(overrides)
    return tuple(values[name] for name in FIELDS)


def test_fields_are_the_documented_fields_in_order() -> None:
    assert tuple(TaskOut.model_fields) == FIELDS


def test_a_rendered_task_is_what_pydantic_would_write() -> None:
    body = render_task(_row())
    assert body == TaskOut.model_validate_json(body).model_dump_json().encode()
    document = orjson.loads(body)
    assert list(document) == list(FIELDS)
    assert document["id"] == "7d0f0c39-6a3e-4cbe-9e9e-0f7f4f1d3c1a"
    assert document["created_at"] == "2026-11-20T09:12:44.123456Z"
    assert document["updated_at"] == "2026-11-24T16:03:10Z"
    assert (document["status"], document["priority"]) == ("in_progress", "high")


def test_a_task_with_its_next_occurrence_is_what_pydantic_would_write() -> None:
    recurring = _row(recurrence="FREQ=DAILY", status=TaskStatus.COMPLETED)
    for following in (_row(id=DriverUUID(int=7), recurrence="FREQ=DAILY"), None):
        body = render_with_next(recurring, following)
        assert body == TaskWithNext.model_validate_json(body).model_dump_json().encode()
    assert orjson.loads(body)["next_occurrence"] is None


def test_a_rendered_page_counts_pages() -> None:
    body = render_page([_row()] * 3, total=41, page=2, limit=20, next_cursor="c")
    page = TaskPage.model_validate_json(body)
    assert (page.total, page.page, page.limit, page.pages, len(page.items)) == (41, 2, 20, 3, 3)
    assert page.next_cursor == "c"
    assert list(orjson.loads(body)) == list(TaskPage.model_fields)
    empty = orjson.loads(render_page([], total=0, page=1, limit=20, next_cursor=None))
    assert (empty["items"], empty["pages"], empty["next_cursor"]) == ([], 0, None)


def test_a_cursor_page_has_no_count() -> None:
    body = render_page([_row()], total=None, page=None, limit=20, next_cursor=None)
    page = TaskPage.model_validate_json(body)
    assert (page.total, page.page, page.pages, len(page.items)) == (None, None, None, 1)


def test_an_unknown_type_is_an_error_not_a_silent_string() -> None:
    with pytest.raises(TypeError):
        render_task(_row(title=object()))
