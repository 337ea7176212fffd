"""Cursor pages of the task and category lists: every sort, NULL due dates, concurrent writes."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from api.resources import Resources
from common.tasks.queries import parse_list_query
from tests.support.factories import Account, register
from tests.support.tasks import (
    CATEGORIES,
    TASKS,
    cache_requests,
    create_category,
    create_task,
    list_tasks,
    sync_page,
)

SORTS = [
    *(
        f"{sign}{key}"
        for key in ("created_at", "updated_at", "due_date", "priority", "title", "status")
        for sign in ("", "-")
    ),
    "-priority,due_date",
    "due_date,-title",
    "status,-due_date",
    "-due_date,priority",
    "title,priority",
]


def _ids(page: dict[str, Any]) -> list[str]:
    return [item["id"] for item in page["items"]]


async def _follow(
    client: httpx.AsyncClient, account: Account, **params: Any
) -> tuple[list[str], list[dict[str, Any]]]:
    """Every task of the list, from the first page (an offset page) along `next_cursor`."""
    pages = [await list_tasks(client, account, **params)]
    while pages[-1]["next_cursor"] is not None:
        pages.append(await list_tasks(client, account, cursor=pages[-1]["next_cursor"], **params))
    return [task_id for page in pages for task_id in _ids(page)], pages


@pytest.fixture
async def varied(client: httpx.AsyncClient) -> Account:
    """Tasks with ties in every key and a third of them without a due date."""
    account = await register(client)
    soon = datetime.now(UTC) + timedelta(days=3)
    for index in range(14):
        fields: dict[str, Any] = {
            "title": f"Task {index % 5}",
            "priority": ("low", "medium", "high")[index % 3],
            "status": ("pending", "completed", "in_progress", "cancelled")[index % 4],
        }
        if index % 3:
            fields["due_date"] = (soon + timedelta(hours=index % 4)).isoformat()
        await create_task(client, account, **fields)
    return account


@pytest.mark.parametrize("sort", SORTS)
async def test_following_the_cursor_gives_the_whole_list_in_order(
    client: httpx.AsyncClient, varied: Account, sort: str
) -> None:
    everything = _ids(await list_tasks(client, varied, sort=sort, limit=100))

    followed, pages = await _follow(client, varied, sort=sort, limit=4)

    assert followed == everything
    assert len(pages) == 4
    assert all(page["total"] is None and page["page"] is None for page in pages[1:])
    assert all(page["pages"] is None and page["limit"] == 4 for page in pages[1:])


async def test_the_cursor_keeps_the_filters(client: httpx.AsyncClient, varied: Account) -> None:
    params = {"status": "pending,completed", "sort": "due_date", "limit": 2}
    everything = _ids(await list_tasks(client, varied, **{**params, "limit": 100}))
    followed, _ = await _follow(client, varied, **params)
    assert followed == everything and len(everything) == 8


async def test_a_full_last_page_says_nothing_follows(client: httpx.AsyncClient) -> None:
    account = await register(client)
    for _ in range(4):
        await create_task(client, account)
    first = await list_tasks(client, account, limit=2)
    assert first["next_cursor"] is not None and first["total"] == 4
    second = await list_tasks(client, account, limit=2, cursor=first["next_cursor"])
    assert len(second["items"]) == 2 and second["next_cursor"] is None
    assert (await list_tasks(client, account, limit=4))["next_cursor"] is None


async def test_offset_pages_carry_the_cursor_of_their_last_row(
    client: httpx.AsyncClient, varied: Account
) -> None:
    second = await list_tasks(client, varied, page=2, limit=4, sort="title")
    third = await list_tasks(client, varied, page=3, limit=4, sort="title")
    after = await list_tasks(client, varied, cursor=second["next_cursor"], limit=4, sort="title")
    assert _ids(after) == _ids(third)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"sort": "title"}, "another list"),
        ({"status": "pending"}, "another list"),
        ({"page": 2}, "either page or cursor"),
    ],
)
async def test_a_cursor_answers_only_its_own_list(
    client: httpx.AsyncClient, varied: Account, change: dict[str, Any], reason: str
) -> None:
    cursor = (await list_tasks(client, varied, limit=2))["next_cursor"]
    response = await client.get(
        TASKS, params={"limit": 2, "cursor": cursor, **change}, headers=varied.headers
    )
    assert response.status_code == 400
    assert reason in response.json()["detail"]
    assert response.json()["errors"][0]["loc"] == ["query", "cursor"]


async def test_another_accounts_or_the_feeds_cursor_is_a_400(
    client: httpx.AsyncClient, varied: Account
) -> None:
    other = await register(client)
    for _ in range(3):
        await create_task(client, other)
    theirs = (await list_tasks(client, other, limit=2))["next_cursor"]
    feed = (await sync_page(client, varied))["next_cursor"]
    for cursor in (theirs, feed, theirs[:-3], "x" * 3000):
        response = await client.get(
            TASKS, params={"limit": 2, "cursor": cursor}, headers=varied.headers
        )
        assert response.status_code == 400, cursor
        assert response.json()["errors"][0]["loc"] == ["query", "cursor"]


async def test_cursor_pages_are_cached_under_their_cursor(
    client: httpx.AsyncClient, varied: Account
) -> None:
    first = await list_tasks(client, varied, limit=3)
    second = await list_tasks(client, varied, limit=3, cursor=first["next_cursor"])
    hits = cache_requests("tasks", "hit")
    again = await list_tasks(client, varied, limit=3, cursor=first["next_cursor"])
    third = await list_tasks(client, varied, limit=3, cursor=second["next_cursor"])
    assert again == second and _ids(third) != _ids(second)
    assert cache_requests("tasks", "hit") == hits + 1


async def test_cursor_pages_hold_still_while_tasks_come_and_go(
    live_client: httpx.AsyncClient,
) -> None:
    """A reader pages through while another client creates and deletes tasks concurrently:
    every task that was there from start to end is seen exactly once, and nothing twice."""
    account = await register(live_client)
    original = [(await create_task(live_client, account))["id"] for _ in range(30)]
    doomed = set(original[::4])
    reading_done = asyncio.Event()

    async def writer() -> None:
        pending = sorted(doomed)
        while not reading_done.is_set():
            await create_task(live_client, account)
            if pending:
                task_id = pending.pop()
                response = await live_client.delete(f"{TASKS}/{task_id}", headers=account.headers)
                assert response.status_code == 204
            await asyncio.sleep(0)

    async def reader() -> list[str]:
        try:
            seen: list[str] = []
            page = await list_tasks(live_client, account, limit=3, sort="created_at")
            seen += _ids(page)
            while page["next_cursor"] is not None:
                await asyncio.sleep(0.005)
                page = await list_tasks(
                    live_client, account, limit=3, sort="created_at", cursor=page["next_cursor"]
                )
                seen += _ids(page)
            return seen
        finally:
            reading_done.set()

    seen, _ = await asyncio.gather(reader(), writer())

    assert len(seen) == len(set(seen)), "a task was shown twice"
    survivors = [task_id for task_id in original if task_id not in doomed]
    assert [task_id for task_id in seen if task_id in set(survivors)] == survivors
    assert len(seen) > len(survivors), "the writer should have raced the reader"


async def _categories(client: httpx.AsyncClient, account: Account, **params: Any) -> Any:
    response = await client.get(CATEGORIES, params=params, headers=account.headers)
    assert response.status_code == 200, response.text
    return response.json()


async def test_categories_page_by_name_ignoring_case(client: httpx.AsyncClient) -> None:
    account = await register(client)
    for name in ("beta", "Alpha", "delta", "Charlie", "Échelle"):
        await create_category(client, account, name=name)
    everything = await _categories(client, account)
    assert everything["next_cursor"] is None and everything["total"] == 5

    names, page = [], await _categories(client, account, limit=2)
    names += [item["name"] for item in page["items"]]
    while page["next_cursor"] is not None:
        assert page["total"] == 5
        page = await _categories(client, account, limit=2, cursor=page["next_cursor"])
        names += [item["name"] for item in page["items"]]

    assert names == [item["name"] for item in everything["items"]]
    assert names[:4] == ["Alpha", "beta", "Charlie", "delta"]


async def test_a_category_created_between_pages_is_neither_skipped_nor_repeated(
    client: httpx.AsyncClient,
) -> None:
    account = await register(client)
    for name in ("aaa", "ccc", "eee"):
        await create_category(client, account, name=name)
    first = await _categories(client, account, limit=2)
    await create_category(client, account, name="ddd")
    await create_category(client, account, name="bbb")  # before the position: not shown
    rest = await _categories(client, account, limit=2, cursor=first["next_cursor"])
    assert [c["name"] for c in first["items"] + rest["items"]] == ["aaa", "ccc", "ddd", "eee"]
    assert rest["total"] == 5


@pytest.mark.parametrize("params", [{"limit": 0}, {"limit": 101}, {"cursor": "garbage"}])
async def test_bad_category_paging_is_a_400(
    client: httpx.AsyncClient, params: dict[str, Any]
) -> None:
    account = await register(client)
    response = await client.get(CATEGORIES, params=params, headers=account.headers)
    assert response.status_code == 400
    assert response.json()["errors"][0]["loc"][0] == "query"


async def test_another_accounts_category_cursor_is_a_400(client: httpx.AsyncClient) -> None:
    mine, theirs = await register(client), await register(client)
    for name in ("one", "two", "three"):
        await create_category(client, theirs, name=name)
    cursor = (await _categories(client, theirs, limit=1))["next_cursor"]
    response = await client.get(
        CATEGORIES, params={"limit": 1, "cursor": cursor}, headers=mine.headers
    )
    assert response.status_code == 400


async def test_a_signed_cursor_whose_position_does_not_fit_is_a_400(
    client: httpx.AsyncClient, varied: Account, test_resources: Resources
) -> None:
    """Only a bug (or a leaked key) could sign one; it is still a 400, never a 500."""
    user_id = uuid.UUID(varied.user["id"])
    query = parse_list_query()
    cursors = test_resources.cursors
    odd_list = cursors.sign("tasks", user_id, {"q": query.fingerprint(), "a": ["x"]})
    odd_trash = cursors.sign("trash", user_id, {"d": "yesterday", "i": "x"})
    for url, cursor in ((TASKS, odd_list), (f"{TASKS}/trash", odd_trash)):
        response = await client.get(url, params={"cursor": cursor}, headers=varied.headers)
        assert response.status_code == 400, url
        assert "does not fit" in response.json()["detail"]
