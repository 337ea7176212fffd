"""Listing tasks: pagination, every filter, every sort, bad parameters, and no N+1 queries."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from api.resources import Resources
from tests.support.factories import Account, register
from tests.support.tasks import (
    TASKS,
    assign,
    count_statements,
    create_category,
    create_task,
    future,
    list_tasks,
)


def _titles(page: dict[str, Any]) -> list[str]:
    return [item["title"] for item in page["items"]]


async def _tasks(client: httpx.AsyncClient, account: Account, *titles: str) -> list[dict[str, Any]]:
    return [await create_task(client, account, title=title) for title in titles]


async def test_an_empty_list_has_the_full_shape(client: httpx.AsyncClient) -> None:
    account = await register(client)
    assert await list_tasks(client, account) == {
        "items": [],
        "total": 0,
        "page": 1,
        "limit": 20,
        "pages": 0,
        "next_cursor": None,
    }


async def test_pages_cover_every_task_once_and_past_the_end_is_empty(
    client: httpx.AsyncClient,
) -> None:
    account = await register(client)
    created = await _tasks(client, account, *(f"Task {i:02}" for i in range(25)))
    seen: list[str] = []
    for page in (1, 2, 3):
        body = await list_tasks(client, account, page=page, limit=10)
        assert body["total"] == 25
        assert body["pages"] == 3
        assert body["page"] == page
        assert body["limit"] == 10
        seen += [item["id"] for item in body["items"]]
    assert seen == [task["id"] for task in reversed(created)]  # newest first by default
    past_end = await list_tasks(client, account, page=4, limit=10)
    assert past_end["items"] == []
    assert past_end["total"] == 25
    far = await list_tasks(client, account, page=1_000_000, limit=100)
    assert far["items"] == []


async def test_a_partial_first_page_knows_its_total_and_a_full_one_counts(
    client: httpx.AsyncClient,
) -> None:
    account = await register(client)
    await _tasks(client, account, "One task", "Two task", "Three task")
    assert (await list_tasks(client, account, limit=5))["total"] == 3
    assert (await list_tasks(client, account, limit=3))["total"] == 3
    assert (await list_tasks(client, account, limit=2))["total"] == 3


@pytest.mark.parametrize(
    ("params", "parameter"),
    [
        ({"page": 0}, "page"),
        ({"page": -1}, "page"),
        ({"page": "two"}, "page"),
        ({"page": 1_000_001}, "page"),
        ({"page": "9" * 40}, "page"),
        ({"limit": 0}, "limit"),
        ({"limit": 101}, "limit"),
        ({"limit": "1.5"}, "limit"),
        ({"status": "done"}, "status"),
        ({"status": "pending,nope"}, "status"),
        ({"priority": "urgent"}, "priority"),
        ({"category_id": "not-a-uuid"}, "category_id"),
        ({"category_id": f"{uuid.uuid4()},42"}, "category_id"),
        ({"due_from": "tomorrow"}, "due_from"),
        ({"due_from": "2030-01-01T00:00:00"}, "due_from"),
        ({"due_to": "2030-13-01T00:00:00Z"}, "due_to"),
        ({"due_from": "2030-02-01T00:00:00Z", "due_to": "2030-01-01T00:00:00Z"}, "due_from"),
        ({"sort": "colour"}, "sort"),
        ({"sort": "title,-title"}, "sort"),
        ({"sort": "--title"}, "sort"),
        ({"sort": "user_id"}, "sort"),
        ({"sort": "title; DROP TABLE tasks"}, "sort"),
        ({"q": "x" * 201}, "q"),
        ({"q": "nul\x00byte"}, "q"),
        ({"q": "bell\x07"}, "q"),
        ({"overdue": "maybe"}, "overdue"),
        ({"status": ",".join(["pending"] * 51)}, "status"),
    ],
)
async def test_bad_parameters_are_400_naming_the_parameter(
    client: httpx.AsyncClient, params: dict[str, Any], parameter: str
) -> None:
    account = await register(client)
    response = await client.get(TASKS, params=params, headers=account.headers)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert parameter in {error["field"] for error in response.json()["errors"]}


async def test_status_filter_takes_repeated_and_comma_separated_values(
    client: httpx.AsyncClient,
) -> None:
    account = await register(client)
    for title, status in [
        ("Open one", "pending"),
        ("Busy one", "in_progress"),
        ("Done one", "completed"),
        ("Gone one", "cancelled"),
    ]:
        await create_task(client, account, title=title, status=status)
    assert _titles(await list_tasks(client, account, status="completed")) == ["Done one"]
    both = await list_tasks(client, account, status="pending,in_progress", sort="title")
    assert _titles(both) == ["Busy one", "Open one"]
    response = await client.get(
        TASKS,
        params=[("status", "completed"), ("status", "cancelled"), ("sort", "title")],
        headers=account.headers,
    )
    assert _titles(response.json()) == ["Done one", "Gone one"]
    assert (await list_tasks(client, account, status=" pending , ,"))["total"] == 1


async def test_priority_filter(client: httpx.AsyncClient) -> None:
    account = await register(client)
    for title, priority in [("Low one", "low"), ("Mid one", "medium"), ("High one", "high")]:
        await create_task(client, account, title=title, priority=priority)
    assert _titles(await list_tasks(client, account, priority="high")) == ["High one"]
    assert _titles(await list_tasks(client, account, priority="low,high", sort="title")) == [
        "High one",
        "Low one",
    ]


async def test_due_date_window_is_inclusive_and_excludes_undated_tasks(
    client: httpx.AsyncClient,
) -> None:
    account = await register(client)
    base = (datetime.now(UTC) + timedelta(days=10)).replace(microsecond=0)
    for day in range(4):
        await create_task(
            client,
            account,
            title=f"Due day {day}",
            due_date=(base + timedelta(days=day)).isoformat(),
        )
    await create_task(client, account, title="No due date")
    window = await list_tasks(
        client,
        account,
        due_from=(base + timedelta(days=1)).isoformat(),
        due_to=(base + timedelta(days=2)).isoformat(),
        sort="due_date",
    )
    assert _titles(window) == ["Due day 1", "Due day 2"]
    after = await list_tasks(client, account, due_from=(base + timedelta(days=3)).isoformat())
    assert _titles(after) == ["Due day 3"]
    before = await list_tasks(client, account, due_to=base.isoformat())
    assert _titles(before) == ["Due day 0"]


async def test_an_unencoded_plus_in_a_query_date_still_means_plus(
    client: httpx.AsyncClient,
) -> None:
    account = await register(client)
    due = (datetime.now(UTC) + timedelta(days=3)).replace(microsecond=0)
    await create_task(client, account, title="Due soon", due_date=due.isoformat())
    # `+02:00` typed into a URL by hand arrives as ` 02:00`.
    start = (due - timedelta(hours=1)).astimezone(timezone(timedelta(hours=2))).isoformat()
    raw = f"{TASKS}?due_from={start.replace('+', '%20')}"
    response = await client.get(raw, headers=account.headers)
    assert response.status_code == 200, response.text
    assert _titles(response.json()) == ["Due soon"]


async def test_search_is_case_insensitive_over_title_and_description(
    client: httpx.AsyncClient,
) -> None:
    account = await register(client)
    await create_task(client, account, title="Buy MILK today")
    await create_task(
        client, account, title="Call the bank", description="About the Milkshake fund"
    )
    await create_task(client, account, title="Unrelated")
    assert _titles(await list_tasks(client, account, q="milk", sort="title")) == [
        "Buy MILK today",
        "Call the bank",
    ]
    assert _titles(await list_tasks(client, account, q="  BANK  ")) == ["Call the bank"]
    assert (await list_tasks(client, account, q="   "))["total"] == 3  # blank: no filter
    assert (await list_tasks(client, account, q="today about"))["total"] == 0


async def test_search_treats_like_wildcards_literally(client: httpx.AsyncClient) -> None:
    account = await register(client)
    await create_task(client, account, title="Save 100% of it")
    await create_task(client, account, title="Save 1000 of it")
    await create_task(client, account, title="snake_case name")
    await create_task(client, account, title="snakeXcase name")
    await create_task(client, account, title="back\\slash here")
    assert _titles(await list_tasks(client, account, q="100%")) == ["Save 100% of it"]
    assert _titles(await list_tasks(client, account, q="00%")) == ["Save 100% of it"]
    assert _titles(await list_tasks(client, account, q="e_c")) == ["snake_case name"]
    assert _titles(await list_tasks(client, account, q="k\\s")) == ["back\\slash here"]
    assert (await list_tasks(client, account, q="'; DROP TABLE tasks; --"))["total"] == 0


async def test_category_filter_matches_any_of_the_given_categories(
    client: httpx.AsyncClient,
) -> None:
    account = await register(client)
    home, work, idle = [
        await create_category(client, account, name) for name in ("Home", "Work", "Idle")
    ]
    chores, report, both, _none = await _tasks(client, account, "Chores", "Report", "Both", "None")
    await assign(client, account, chores["id"], home["id"])
    await assign(client, account, report["id"], work["id"])
    await assign(client, account, both["id"], home["id"])
    await assign(client, account, both["id"], work["id"])
    assert _titles(await list_tasks(client, account, category_id=home["id"], sort="title")) == [
        "Both",
        "Chores",
    ]
    either = await list_tasks(
        client, account, category_id=f"{home['id']},{work['id']}", sort="title"
    )
    assert _titles(either) == ["Both", "Chores", "Report"]  # no duplicates
    assert (await list_tasks(client, account, category_id=idle["id"]))["total"] == 0
    assert (await list_tasks(client, account, category_id=str(uuid.uuid4())))["total"] == 0


async def test_overdue_means_past_due_and_still_open(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    account = await register(client)
    late, late_done, soon, _undated = await _tasks(
        client, account, "Late", "Late but done", "Soon", "Undated"
    )
    await session.execute(
        text(
            "UPDATE tasks SET due_date = now() - interval '1 hour',"
            " status = CASE WHEN id = :done THEN 'completed' ELSE status END"
            " WHERE id IN (:late, :done)"
        ),
        {"late": late["id"], "done": late_done["id"]},
    )
    await session.execute(
        text("UPDATE tasks SET due_date = now() + interval '1 day' WHERE id = :id"),
        {"id": soon["id"]},
    )
    assert _titles(await list_tasks(client, account, overdue="true")) == ["Late"]
    on_time = await list_tasks(client, account, overdue="false", sort="title")
    assert _titles(on_time) == ["Late but done", "Soon", "Undated"]


async def test_filters_combine(client: httpx.AsyncClient) -> None:
    account = await register(client)
    await create_task(client, account, title="Urgent report", priority="high", status="pending")
    await create_task(client, account, title="Urgent call", priority="high", status="completed")
    await create_task(client, account, title="Casual report", priority="low", status="pending")
    body = await list_tasks(client, account, priority="high", status="pending", q="report")
    assert _titles(body) == ["Urgent report"]


SORT_CASES: list[tuple[str, list[str]]] = [
    ("title", ["Alpha", "Bravo", "Charlie"]),
    ("-title", ["Charlie", "Bravo", "Alpha"]),
    ("priority", ["Charlie", "Alpha", "Bravo"]),  # low < medium < high
    ("-priority", ["Bravo", "Alpha", "Charlie"]),
    ("due_date", ["Bravo", "Charlie", "Alpha"]),  # undated last when ascending
    ("-due_date", ["Alpha", "Charlie", "Bravo"]),
    ("status", ["Charlie", "Bravo", "Alpha"]),  # alphabetical: completed, in_progress, pending
    ("-status", ["Alpha", "Bravo", "Charlie"]),
    ("created_at", ["Alpha", "Bravo", "Charlie"]),
    ("-created_at", ["Charlie", "Bravo", "Alpha"]),
    ("updated_at", ["Bravo", "Charlie", "Alpha"]),
    ("-updated_at", ["Alpha", "Charlie", "Bravo"]),
]


@pytest.mark.parametrize(("sort", "expected"), SORT_CASES)
async def test_each_sort_key_in_both_directions(
    client: httpx.AsyncClient, sort: str, expected: list[str]
) -> None:
    account = await register(client)
    alpha = await create_task(client, account, title="Alpha", priority="medium")
    bravo = await create_task(client, account, title="Bravo", priority="high", due_date=future(1))
    charlie = await create_task(
        client, account, title="Charlie", priority="low", due_date=future(2)
    )
    await client.patch(
        f"{TASKS}/{bravo['id']}",
        json={"version": 1, "status": "in_progress"},
        headers=account.headers,
    )
    await client.patch(
        f"{TASKS}/{charlie['id']}",
        json={"version": 1, "status": "completed"},
        headers=account.headers,
    )
    await client.patch(
        f"{TASKS}/{alpha['id']}",
        json={"version": 1, "description": "touched last"},
        headers=account.headers,
    )
    assert _titles(await list_tasks(client, account, sort=sort)) == expected


async def test_multi_key_sort_and_a_stable_tie_breaker_across_pages(
    client: httpx.AsyncClient,
) -> None:
    account = await register(client)
    for i in range(12):
        await create_task(client, account, title=f"Same {i % 3}", priority=["low", "high"][i % 2])
    body = await list_tasks(client, account, sort="-priority,title", limit=20)
    keys = [(item["priority"], item["title"]) for item in body["items"]]
    assert keys == sorted(keys, key=lambda k: ({"high": 0, "low": 1}[k[0]], k[1]))
    # Every task has one of two priorities: pages must still neither repeat nor skip a task.
    ids: list[str] = []
    for page in range(1, 5):
        ids += [
            item["id"]
            for item in (await list_tasks(client, account, sort="priority", limit=3, page=page))[
                "items"
            ]
        ]
    assert len(ids) == len(set(ids)) == 12


async def test_other_users_tasks_never_appear(client: httpx.AsyncClient) -> None:
    mine, theirs = await register(client), await register(client)
    await create_task(client, mine, title="Mine only")
    await create_task(client, theirs, title="Theirs only")
    assert _titles(await list_tasks(client, mine)) == ["Mine only"]
    assert (await list_tasks(client, mine, q="Theirs"))["total"] == 0


async def test_categories_come_without_a_query_per_task(
    client: httpx.AsyncClient, test_resources: Resources
) -> None:
    account = await register(client)
    categories = [await create_category(client, account, f"Label {i}") for i in range(3)]

    async def statements_for_a_page() -> int:
        await client.post(
            "/api/v1/categories",
            json={"name": f"Bust {uuid.uuid4().hex[:8]}"},
            headers=account.headers,
        )  # cache bust
        with count_statements(test_resources.engine) as counter:
            body = await list_tasks(client, account, limit=20)
        assert body["items"]
        queries = [
            s
            for s in counter.statements
            if not s.upper().startswith(("SAVEPOINT", "RELEASE", "ROLLBACK"))
        ]
        assert len(queries) <= 2, queries  # the page and its categories (no count: 1 page)
        return counter.count

    task = await create_task(client, account)
    for category in categories:
        await assign(client, account, task["id"], category["id"])
    one_task = await statements_for_a_page()
    for _ in range(14):
        extra = await create_task(client, account)
        for category in categories:
            await assign(client, account, extra["id"], category["id"])
    fifteen_tasks = await statements_for_a_page()
    assert one_task == fifteen_tasks
    body = await list_tasks(client, account)
    assert [c["name"] for c in body["items"][0]["categories"]] == ["Label 0", "Label 1", "Label 2"]
    assert set(body["items"][0]["categories"][0]) == {"id", "name", "color"}
