"""Batches of creates, updates and deletes: all or nothing, every failed item named by index."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from api.resources import Resources
from common.cache import generation_key
from common.models import ChangeFeedEntry, Task
from tests.support.factories import Account, register
from tests.support.tasks import TASKS, create_task, follow_feed, future, list_tasks, past

BATCH = f"{TASKS}/batch"
BATCH_DELETE = f"{TASKS}/batch/delete"


async def _count(session: AsyncSession, model: Any) -> int:
    return (await session.execute(select(func.count()).select_from(model))).scalar_one()


def _errors(response: httpx.Response) -> list[tuple[Any, ...]]:
    return [tuple(error["loc"]) for error in response.json()["errors"]]


async def _generation(redis: Redis, account: Account) -> int:
    return int(await redis.get(generation_key(uuid.UUID(account.user["id"]))) or 0)


async def test_a_batch_creates_every_task_in_order_with_one_cache_bump(
    client: httpx.AsyncClient, test_resources: Resources
) -> None:
    redis = test_resources.redis
    account = await register(client)
    await list_tasks(client, account)  # a cached page, and a generation
    generation = await _generation(redis, account)
    items = [
        {"title": "First of three", "priority": "high"},
        {"title": "Second of three", "due_date": future(), "status": "completed"},
        {"title": "Third of three", "description": "with words"},
    ]

    response = await client.post(BATCH, json={"items": items}, headers=account.headers)

    assert response.status_code == 201, response.text
    created = response.json()["items"]
    assert [task["title"] for task in created] == [item["title"] for item in items]
    assert created[1]["completed_at"] is not None and created[0]["priority"] == "high"
    assert await _generation(redis, account) == generation + 1
    listed = await list_tasks(client, account, sort="created_at")
    assert {t["id"] for t in listed["items"]} == {t["id"] for t in created}
    changes, _ = await follow_feed(client, account)
    assert [(c["id"], c["op"]) for c in changes] == [(t["id"], "upsert") for t in created]


def _hundred(broken: Callable[[dict[str, Any]], None]) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = [{"title": f"Batch item {i}"} for i in range(100)]
    broken(items[57])
    return items


@pytest.mark.parametrize(
    ("broken", "field"),
    [
        (lambda item: item.update(title="no"), "title"),
        (lambda item: item.update(due_date=past()), "due_date"),
        (lambda item: item.update(due_date="2030-01-01T09:00:00"), "due_date"),
        (lambda item: item.update(parent_id=str(uuid.uuid4())), "parent_id"),
        (lambda item: item.update(owner="me"), "owner"),
    ],
)
async def test_a_failure_at_item_57_writes_nothing_and_names_it(
    client: httpx.AsyncClient,
    session: AsyncSession,
    broken: Callable[[dict[str, Any]], None],
    field: str,
) -> None:
    account = await register(client)

    response = await client.post(BATCH, json={"items": _hundred(broken)}, headers=account.headers)

    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert _errors(response) == [("body", "items", 57, field)]
    assert await _count(session, Task) == 0
    assert await _count(session, ChangeFeedEntry) == 0


async def test_every_failed_item_is_named(client: httpx.AsyncClient) -> None:
    account = await register(client)
    items = [{"title": f"Item {i}"} for i in range(10)]
    items[2]["due_date"] = past()
    items[7]["due_date"] = past()
    response = await client.post(BATCH, json={"items": items}, headers=account.headers)
    assert response.status_code == 400
    assert _errors(response) == [("body", "items", 2, "due_date"), ("body", "items", 7, "due_date")]
    assert "at 2, 7" in response.json()["detail"]


@pytest.mark.parametrize("items", [[], [{"title": "Same size"}] * 101, "not a list", None])
async def test_a_batch_has_one_to_a_hundred_items(client: httpx.AsyncClient, items: Any) -> None:
    account = await register(client)
    response = await client.post(BATCH, json={"items": items}, headers=account.headers)
    assert response.status_code == 400
    assert _errors(response)[0][:2] == ("body", "items")


async def test_a_batch_body_over_256_kib_is_413(client: httpx.AsyncClient) -> None:
    account = await register(client)
    items = [{"title": "Long one", "description": "x" * 2000}] * 100
    fits = await client.post(BATCH, json={"items": items}, headers=account.headers)
    assert fits.status_code == 201
    items = [{"title": "Long one", "description": "é" * 2000}] * 100
    response = await client.post(BATCH, json={"items": items}, headers=account.headers)
    assert response.status_code == 413


async def test_an_idempotency_key_replays_the_batch(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    account = await register(client)
    body = {"items": [{"title": "Once only"}, {"title": "Twice never"}]}
    headers = {**account.headers, "Idempotency-Key": "batch-1"}

    first = await client.post(BATCH, json=body, headers=headers)
    again = await client.post(BATCH, json=body, headers=headers)
    other = await client.post(BATCH, json={"items": [{"title": "Another"}]}, headers=headers)

    assert first.status_code == again.status_code == 201
    assert again.content == first.content and again.headers["Idempotent-Replayed"] == "true"
    assert other.status_code == 422
    assert await _count(session, Task) == 2


async def test_batches_have_their_own_rate_limit(
    client: httpx.AsyncClient, configure: Callable[..., Any]
) -> None:
    configure(batch_rate_limit=2)
    account = await register(client)
    body = {"items": [{"title": "Rate limited"}]}
    statuses = [
        (await client.post(BATCH, json=body, headers=account.headers)).status_code for _ in range(3)
    ]
    assert statuses == [201, 201, 429]
    refused = await client.post(
        BATCH_DELETE, json={"ids": [str(uuid.uuid4())]}, headers=account.headers
    )
    assert refused.status_code == 429 and "Retry-After" in refused.headers
    assert (await client.post(TASKS, json={"title": "Single"}, headers=account.headers)).is_success


async def _batch_patch(
    client: httpx.AsyncClient, account: Account, items: list[dict[str, Any]]
) -> httpx.Response:
    return await client.patch(BATCH, json={"items": items}, headers=account.headers)


async def test_a_batch_update_applies_every_edit(client: httpx.AsyncClient) -> None:
    account = await register(client)
    first, second = await create_task(client, account), await create_task(client, account)

    response = await _batch_patch(
        client,
        account,
        [
            {"id": second["id"], "version": 1, "status": "completed"},
            {"id": first["id"], "version": 1, "title": "Renamed", "parent_id": second["id"]},
        ],
    )

    assert response.status_code == 200, response.text
    updated = response.json()["items"]
    assert [task["id"] for task in updated] == [second["id"], first["id"]]
    assert updated[0]["completed_at"] is not None
    assert (updated[1]["title"], updated[1]["parent_id"], updated[1]["version"]) == (
        "Renamed",
        second["id"],
        2,
    )


async def test_stale_versions_are_a_409_naming_each_with_its_current_version(
    client: httpx.AsyncClient,
) -> None:
    account = await register(client)
    tasks = [await create_task(client, account) for _ in range(3)]
    moved = await client.patch(
        f"{TASKS}/{tasks[2]['id']}",
        json={"version": 1, "title": "Moved on"},
        headers=account.headers,
    )
    assert moved.status_code == 200

    response = await _batch_patch(
        client,
        account,
        [{"id": task["id"], "version": 1, "priority": "high"} for task in tasks],
    )

    assert response.status_code == 409
    problem = response.json()
    assert problem["type"] == "urn:taskpipe:problem:version-conflict"
    assert [(e["loc"], e["current_version"]) for e in problem["errors"]] == [
        (["body", "items", 2, "version"], 2)
    ]
    for task in tasks[:2]:
        shown = (await client.get(f"{TASKS}/{task['id']}", headers=account.headers)).json()
        assert (shown["priority"], shown["version"]) == ("medium", 1)


async def test_a_batch_update_refuses_unknown_foreign_and_repeated_tasks(
    client: httpx.AsyncClient,
) -> None:
    account, stranger = await register(client), await register(client)
    mine = await create_task(client, account)
    theirs = await create_task(client, stranger)

    items = [
        {"id": mine["id"], "version": 1, "title": "Changed"},
        {"id": theirs["id"], "version": 1, "title": "Not mine"},
        {"id": str(uuid.uuid4()), "version": 1, "title": "Nobody's"},
        {"id": mine["id"], "version": 2, "title": "Again"},
    ]
    response = await _batch_patch(
        client, account, [*items, {"id": mine["id"], "title": "No version"}]
    )
    assert response.status_code == 400
    assert _errors(response) == [("body", "items", 4, "version")]  # the schema first

    response = await _batch_patch(client, account, items)

    assert response.status_code == 400
    assert _errors(response) == [
        ("body", "items", 3, "id"),
        ("body", "items", 1, "id"),
        ("body", "items", 2, "id"),
    ]
    shown = (await client.get(f"{TASKS}/{mine['id']}", headers=account.headers)).json()
    assert shown["title"] == mine["title"]
    other = (await client.get(f"{TASKS}/{theirs['id']}", headers=stranger.headers)).json()
    assert other["version"] == 1


async def test_a_batch_cannot_build_a_cycle_one_move_at_a_time(client: httpx.AsyncClient) -> None:
    account = await register(client)
    first, second = await create_task(client, account), await create_task(client, account)
    response = await _batch_patch(
        client,
        account,
        [
            {"id": first["id"], "version": 1, "parent_id": second["id"]},
            {"id": second["id"], "version": 1, "parent_id": first["id"]},
        ],
    )
    assert response.status_code == 400
    assert _errors(response) == [("body", "items", 1, "parent_id")]
    shown = (await client.get(f"{TASKS}/{first['id']}", headers=account.headers)).json()
    assert shown["parent_id"] is None


async def test_a_batch_delete_takes_subtrees_and_names_bad_ids(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    account, stranger = await register(client), await register(client)
    parent = await create_task(client, account)
    child = await create_task(client, account, parent_id=parent["id"])
    lone = await create_task(client, account)
    kept = await create_task(client, account)
    theirs = await create_task(client, stranger)
    _, cursor = await follow_feed(client, account)

    refused = await client.post(
        BATCH_DELETE,
        json={"ids": [lone["id"], theirs["id"], lone["id"], str(uuid.uuid4())]},
        headers=account.headers,
    )
    assert refused.status_code == 400
    assert _errors(refused) == [("body", "ids", 2), ("body", "ids", 1), ("body", "ids", 3)]
    assert (await client.get(f"{TASKS}/{lone['id']}", headers=account.headers)).is_success

    response = await client.post(
        BATCH_DELETE, json={"ids": [parent["id"], lone["id"], child["id"]]}, headers=account.headers
    )

    assert response.status_code == 204
    assert [t["id"] for t in (await list_tasks(client, account))["items"]] == [kept["id"]]
    changes, _ = await follow_feed(client, account, cursor)
    assert sorted((c["id"], c["op"]) for c in changes) == sorted(
        (task["id"], "delete") for task in (parent, child, lone)
    )
    assert (await client.get(f"{TASKS}/{theirs['id']}", headers=stranger.headers)).is_success
