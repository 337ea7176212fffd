"""The scenario's response checks: right answers pass, wrong ones are named."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from loadtests.checks import (
    categories_problem,
    conditional_problem,
    conflict_version,
    page_problem,
    sync_problem,
    task_problem,
    task_reply_problem,
    token_problem,
)

WORK = {"id": "c1", "name": "Work", "color": "#1F6FEB"}


def task(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": "t1",
        "title": "Pay invoice",
        "description": "Needs the receipts from March.",
        "status": "pending",
        "priority": "high",
        "due_date": "2026-12-03T10:00:00Z",
        "parent_id": None,
        "categories": [WORK],
        "subtask_count": 0,
        "completed_subtask_count": 0,
        "version": 2,
        "created_at": "2026-11-20T09:00:00Z",
        "updated_at": "2026-11-21T09:00:00Z",
        "completed_at": None,
    }
    return {**base, **changes}


def page(items: list[dict[str, Any]], **changes: Any) -> dict[str, Any]:
    return {"items": items, "total": len(items), "page": 1, "limit": 20, "pages": 1, **changes}


def test_a_right_task_passes() -> None:
    assert task_problem(task()) is None
    assert task_problem(task(status="completed", completed_at="2026-11-22T09:00:00Z")) is None


@pytest.mark.parametrize(
    ("wrong", "message"),
    [
        ({"status": "done"}, "unknown status"),
        ({"priority": "urgent"}, "unknown priority"),
        ({"version": 0}, "positive integer"),
        ({"status": "completed"}, "completed_at"),
        ({"completed_at": "2026-11-22T09:00:00Z"}, "completed_at"),
        ({"categories": [{"id": "c1"}]}, "categories"),
    ],
)
def test_a_wrong_task_is_named(wrong: dict[str, Any], message: str) -> None:
    problem = task_problem(task(**wrong))
    assert problem is not None
    assert message in problem


def test_a_task_without_a_field_is_named() -> None:
    broken = task()
    del broken["version"]
    assert task_problem(broken) == "a task lacks version"


def test_a_page_honours_its_filters_and_paging() -> None:
    newest = task(id="t2", created_at="2026-11-22T09:00:00Z")
    assert page_problem(page([newest, task()]), {"sort": "-created_at"}) is None
    assert page_problem(page([task()]), {"status": "pending,in_progress"}) is None
    assert page_problem(page([task()]), {"priority": "high", "category_id": "c1"}) is None
    assert page_problem(page([task()]), {"q": "INVOICE"}) is None
    assert page_problem(page([task()]), {"q": "receipts"}) is None
    window = {"due_from": "2026-12-01T00:00:00+00:00", "due_to": "2026-12-08T00:00:00+00:00"}
    assert page_problem(page([task()]), window) is None
    assert page_problem(page([], total=25, page=3, limit=10), {"page": 3, "limit": 10}) is None


@pytest.mark.parametrize(
    ("body", "query", "message"),
    [
        (page([task()], page=2), {}, "page or limit"),
        (page([task()], limit=50), {}, "page or limit"),
        (page([task()] * 3, limit=2), {"limit": 2}, "at most limit"),
        (page([task()], total=0), {}, "total"),
        (page([], total=4), {}, "first page empty"),
        (page([task(status="completed", completed_at="x")]), {"status": "pending"}, "status"),
        (page([task()]), {"priority": "low"}, "priority"),
        (page([task()]), {"category_id": "c9"}, "category"),
        (page([task()]), {"q": "passport"}, "search"),
        (
            page([task(due_date=None)]),
            {"due_from": "2026-12-01T00:00:00+00:00", "due_to": "2026-12-08T00:00:00+00:00"},
            "due date",
        ),
        (
            page([task(), task(id="t2", created_at="2026-11-22T09:00:00Z")]),
            {"sort": "-created_at"},
            "newest first",
        ),
        ({"items": []}, {}, "lacks"),
    ],
)
def test_a_wrong_page_is_named(body: dict[str, Any], query: dict[str, Any], message: str) -> None:
    problem = page_problem(copy.deepcopy(body), query)
    assert problem is not None
    assert message in problem


def test_conditional_requests() -> None:
    assert conditional_problem(304, '"a"', '"a"') is None
    assert conditional_problem(200, '"a"', '"b"') is None
    assert conditional_problem(200, None, '"a"') is None
    assert conditional_problem(304, None, '"a"') == "304 without If-None-Match"
    assert "should be 304" in (conditional_problem(200, '"a"', '"a"') or "")


def test_a_task_reply_matches_what_the_client_wrote() -> None:
    assert task_reply_problem(task(), "t1", 2) is None
    assert task_reply_problem(task(), "t1", None) is None
    assert task_reply_problem(task(), "t2", 2) == "GET returned another task"
    assert "version" in (task_reply_problem(task(), "t1", 3) or "")


def test_tokens_categories_and_conflicts() -> None:
    pair = {"access_token": "a", "refresh_token": "r", "token_type": "bearer", "expires_in": 3600}
    assert token_problem(pair) is None
    assert token_problem({**pair, "token_type": "mac"}) is not None
    assert token_problem({"access_token": "a"}) is not None
    assert categories_problem({"items": [WORK], "total": 1}) is None
    assert categories_problem({"items": [WORK], "total": 2}) is not None
    assert categories_problem({"items": [{"id": "c1"}], "total": 1}) is not None
    assert conflict_version({"status": 409, "current_version": 7}) == 7
    assert conflict_version({"status": 409}) is None
    assert conflict_version(None) is None


def changes(*entries: dict[str, Any], has_more: bool = False) -> dict[str, Any]:
    return {"changes": list(entries), "next_cursor": "c", "has_more": has_more}


def upsert(seq: int, **changes_to_task: Any) -> dict[str, Any]:
    data = task(**changes_to_task)
    return {"kind": "task", "id": data["id"], "op": "upsert", "seq": seq, "data": data}


def test_a_right_sync_page_passes() -> None:
    tombstone = {"kind": "category", "id": "c1", "op": "delete", "seq": 7}
    assert sync_problem(changes(upsert(5), upsert(6, id="t2"), tombstone), after_seq=4) is None
    assert sync_problem(changes()) is None


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"changes": []}, "lacks"),
        ({"changes": [], "next_cursor": None, "has_more": False}, "next_cursor"),
        (changes(upsert(3)), "increasing seq"),
        (changes(upsert(6), upsert(5, id="t2")), "increasing seq"),
        (changes({**upsert(6), "kind": "label"}), "known kind"),
        (changes({**upsert(6), "op": "delete"}), "tombstone carries data"),
        (changes({"kind": "task", "id": "t1", "op": "upsert", "seq": 6}), "without data"),
        (changes({**upsert(6), "id": "t9"}), "another entity"),
        (changes(upsert(6, status="done")), "unknown status"),
    ],
)
def test_a_wrong_sync_page_is_named(body: dict[str, Any], message: str) -> None:
    problem = sync_problem(body, after_seq=4)
    assert problem is not None and message in problem
