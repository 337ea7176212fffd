"""What a right answer looks like: the checks the scenario applies to every response.

Locust-free, so they are unit-tested in-process (`tests/loadtests/test_checks.py`). Each returns
None for a right answer, else a short message without ids, so Locust groups failures by kind.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

STATUSES = frozenset({"pending", "in_progress", "completed", "cancelled"})
PRIORITIES = ("low", "medium", "high")
TASK_FIELDS = frozenset(
    {
        "id",
        "title",
        "description",
        "status",
        "priority",
        "due_date",
        "parent_id",
        "categories",
        "subtask_count",
        "completed_subtask_count",
        "version",
        "created_at",
        "updated_at",
        "completed_at",
    }
)
PAGE_FIELDS = frozenset({"items", "total", "page", "limit", "pages"})
TOKEN_FIELDS = frozenset({"access_token", "refresh_token", "token_type", "expires_in"})


def task_problem(task: Any) -> str | None:
    """What is wrong with a task representation, or None."""
    if not isinstance(task, dict):
        return "a task is not an object"
    missing = TASK_FIELDS.difference(task)
    if missing:
        return f"a task lacks {', '.join(sorted(missing))}"
    if task["status"] not in STATUSES:
        return "a task has an unknown status"
    if task["priority"] not in PRIORITIES:
        return "a task has an unknown priority"
    if not isinstance(task["version"], int) or task["version"] < 1:
        return "a task version is not a positive integer"
    if (task["status"] == "completed") != (task["completed_at"] is not None):
        return "completed_at does not match the status"
    categories = task["categories"]
    if not isinstance(categories, list) or not all(
        isinstance(category, dict) and {"id", "name", "color"} <= category.keys()
        for category in categories
    ):
        return "task categories are not a list of {id, name, color}"
    return None


def category_ids(task: dict[str, Any]) -> set[str]:
    return {category["id"] for category in task["categories"]}


def _parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def page_problem(body: Any, query: dict[str, Any]) -> str | None:
    """What is wrong with a list page for `query`: shape, paging, and every filter honoured."""
    if not isinstance(body, dict) or not body.keys() >= PAGE_FIELDS:
        return "a page lacks items/total/page/limit/pages"
    items, page, limit = body["items"], query.get("page", 1), query.get("limit", 20)
    if body["page"] != page or body["limit"] != limit:
        return "page or limit differ from the query"
    if not isinstance(items, list) or len(items) > limit:
        return "items is not a list of at most limit tasks"
    if not isinstance(body["total"], int) or body["total"] < len(items):
        return "total is smaller than the page"
    if page == 1 and body["total"] > 0 and not items:
        return "first page empty although total > 0"
    for item in items:
        problem = task_problem(item) or _filter_problem(item, query)
        if problem:
            return problem
    if query.get("sort") == "-created_at":
        created = [_parse_time(item["created_at"]) for item in items]
        if created != sorted(created, reverse=True):
            return "sort=-created_at is not newest first"
    return None


def _filter_problem(item: dict[str, Any], query: dict[str, Any]) -> str | None:
    if "status" in query and item["status"] not in query["status"].split(","):
        return "status filter not honoured"
    if "priority" in query and item["priority"] not in query["priority"].split(","):
        return "priority filter not honoured"
    if "category_id" in query and query["category_id"] not in category_ids(item):
        return "category filter not honoured"
    if "q" in query:
        text = f"{item['title']} {item['description'] or ''}".lower()
        if query["q"].lower() not in text:
            return "search result does not contain the term"
    if "due_from" in query:
        due = item["due_date"]
        if due is None or not (
            _parse_time(query["due_from"]) <= _parse_time(due) <= _parse_time(query["due_to"])
        ):
            return "due date window not honoured"
    return None


def token_problem(body: Any) -> str | None:
    if not isinstance(body, dict) or not body.keys() >= TOKEN_FIELDS:
        return "token pair lacks access_token/refresh_token/token_type/expires_in"
    if body["token_type"] != "bearer" or not isinstance(body["expires_in"], int):
        return "token_type is not bearer or expires_in is not an integer"
    return None


def conflict_version(body: Any) -> int | None:
    """The current version a 409 carries (PLAN.md: the body has it)."""
    if not isinstance(body, dict):
        return None
    for key in ("current_version", "version"):
        if isinstance(body.get(key), int):
            return int(body[key])
    return None


def conditional_problem(status: int, if_none_match: str | None, etag: str | None) -> str | None:
    """A 304 needs an If-None-Match; a 200 must not repeat the ETag the client already has."""
    if status == 304 and not if_none_match:
        return "304 without If-None-Match"
    if status == 200 and if_none_match and etag == if_none_match:
        return "200 with the very ETag sent in If-None-Match (should be 304)"
    return None


def task_reply_problem(body: Any, task_id: str, known_version: int | None) -> str | None:
    problem = task_problem(body)
    if problem:
        return problem
    if body["id"] != task_id:
        return "GET returned another task"
    if known_version is not None and body["version"] != known_version:
        return "the task version differs from this client's last write"
    return None


def categories_problem(body: Any) -> str | None:
    if not isinstance(body, dict) or not {"items", "total"} <= body.keys():
        return "the category list lacks items/total"
    items = body["items"]
    if not isinstance(items, list) or body["total"] != len(items):
        return "total differs from the number of categories"
    if not all(isinstance(item, dict) and {"id", "name", "color"} <= item.keys() for item in items):
        return "a category lacks id/name/color"
    return None


SYNC_FIELDS = frozenset({"changes", "next_cursor", "has_more"})
CHANGE_KINDS = frozenset({"task", "category"})


def sync_problem(body: Any, after_seq: int | None = None) -> str | None:
    """What is wrong with a page of the change feed: its shape, `seq` order (after the last
    `seq` this client saw), and each upsert's data."""
    if not isinstance(body, dict) or not body.keys() >= SYNC_FIELDS:
        return "a sync answer lacks changes/next_cursor/has_more"
    if not isinstance(body["next_cursor"], str) or not isinstance(body["has_more"], bool):
        return "next_cursor is not a string or has_more not a boolean"
    changes = body["changes"]
    if not isinstance(changes, list):
        return "changes is not a list"
    last = after_seq or 0
    for change in changes:
        if not isinstance(change, dict) or change.get("kind") not in CHANGE_KINDS:
            return "a change has no known kind"
        if not isinstance(change.get("seq"), int) or change["seq"] <= last:
            return "changes are not in increasing seq order after the cursor"
        last = change["seq"]
        if change.get("op") == "delete":
            if "data" in change:
                return "a tombstone carries data"
        elif change.get("op") != "upsert" or not isinstance(change.get("data"), dict):
            return "an upsert without data"
        elif change["data"].get("id") != change.get("id"):
            return "an upsert's data is another entity"
        elif change["kind"] == "task" and (problem := task_problem(change["data"])):
            return problem
    return None
