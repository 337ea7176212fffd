"""The trash and restoring from it (#15): what is listed, what comes back, what answers 404/409."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from api.resources import Resources
from common.maintenance.purge import purge_expired_rows
from common.models import Task
from tests.support.factories import Account, register
from tests.support.tasks import TASKS, create_task, follow_feed, list_tasks

TRASH = f"{TASKS}/trash"


async def _delete(client: httpx.AsyncClient, account: Account, task: dict[str, Any]) -> None:
    response = await client.delete(f"{TASKS}/{task['id']}", headers=account.headers)
    assert response.status_code == 204, response.text


async def _restore(
    client: httpx.AsyncClient, account: Account, task: dict[str, Any]
) -> httpx.Response:
    return await client.post(f"{TASKS}/{task['id']}/restore", headers=account.headers)


async def _trash(client: httpx.AsyncClient, account: Account, **params: Any) -> dict[str, Any]:
    response = await client.get(TRASH, params=params, headers=account.headers)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


async def _age(session: AsyncSession, task: dict[str, Any], days: float) -> None:
    """Pretend the task was deleted `days` ago."""
    await session.execute(
        update(Task)
        .where(Task.id == uuid.UUID(task["id"]))
        .values(deleted_at=datetime.now(UTC) - timedelta(days=days))
    )
    await session.flush()


async def test_the_trash_lists_deleted_tasks_newest_deletion_first(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    account, stranger = await register(client), await register(client)
    first, second, third = [await create_task(client, account) for _ in range(3)]
    live = await create_task(client, account)
    await _delete(client, stranger, await create_task(client, stranger))
    for task in (second, first, third):
        await _delete(client, account, task)
    expired = await create_task(client, account)
    await _delete(client, account, expired)
    await _age(session, expired, 31)

    trash = await _trash(client, account)

    assert [item["id"] for item in trash["items"]] == [third["id"], first["id"], second["id"]]
    assert trash["next_cursor"] is None
    item = trash["items"][0]
    assert item["version"] == third["version"] + 1 and item["deleted_at"].endswith("Z")
    assert set(item) == {*third, "deleted_at"}
    assert live["id"] not in {item["id"] for item in trash["items"]}


async def test_the_trash_pages_with_a_cursor(client: httpx.AsyncClient) -> None:
    account = await register(client)
    tasks = [await create_task(client, account) for _ in range(5)]
    for task in tasks:
        await _delete(client, account, task)

    seen, page = [], await _trash(client, account, limit=2)
    seen += [item["id"] for item in page["items"]]
    while page["next_cursor"]:
        page = await _trash(client, account, limit=2, cursor=page["next_cursor"])
        seen += [item["id"] for item in page["items"]]

    assert seen == [task["id"] for task in reversed(tasks)]
    other = await register(client)
    response = await client.get(
        TRASH,
        params={"cursor": (await _trash(client, account, limit=1))["next_cursor"]},
        headers=other.headers,
    )
    assert response.status_code == 400


async def test_a_restored_task_is_back_with_a_new_version_and_in_the_feed(
    client: httpx.AsyncClient,
) -> None:
    account = await register(client)
    task = await create_task(client, account)
    await _delete(client, account, task)
    _, cursor = await follow_feed(client, account)

    response = await _restore(client, account, task)

    assert response.status_code == 200, response.text
    restored = response.json()
    assert restored["id"] == task["id"] and restored["version"] == task["version"] + 2
    assert response.headers["ETag"].startswith('"')
    assert [t["id"] for t in (await list_tasks(client, account))["items"]] == [task["id"]]
    assert (await _trash(client, account))["items"] == []
    changes, _ = await follow_feed(client, account, cursor)
    assert [(c["id"], c["op"], c["data"]["version"]) for c in changes] == [
        (task["id"], "upsert", restored["version"])
    ]


async def test_restoring_twice_answers_the_task_unchanged(client: httpx.AsyncClient) -> None:
    account = await register(client)
    task = await create_task(client, account)
    await _delete(client, account, task)
    first = await _restore(client, account, task)
    again = await _restore(client, account, task)
    assert again.status_code == 200 and again.json() == first.json()


async def test_restore_is_404_outside_the_trash(
    client: httpx.AsyncClient, session: AsyncSession, test_resources: Resources
) -> None:
    account, stranger = await register(client), await register(client)
    theirs = await create_task(client, stranger)
    await _delete(client, stranger, theirs)
    expired, purged = await create_task(client, account), await create_task(client, account)
    for task in (expired, purged):
        await _delete(client, account, task)
    await _age(session, expired, 30.5)
    await _age(session, purged, 45)
    report = await purge_expired_rows(
        test_resources.unit_of_work,
        now=datetime.now(UTC),
        retention=timedelta(days=40),
        batch_size=10,
    )
    assert report["tasks"] == 1

    for task in (theirs, expired, purged, {"id": str(uuid.uuid4())}):
        response = await _restore(client, account, task)
        assert response.status_code == 404, task
        assert response.json()["type"] == "urn:taskpipe:problem:not-found"
    assert (await client.post(f"{TASKS}/nope/restore", headers=account.headers)).status_code == 400
    assert (await client.post(f"{TASKS}/{theirs['id']}/restore")).status_code == 401


async def test_restoring_a_parent_brings_back_what_was_deleted_with_it(
    client: httpx.AsyncClient,
) -> None:
    account = await register(client)
    top = await create_task(client, account)
    child = await create_task(client, account, parent_id=top["id"])
    grandchild = await create_task(client, account, parent_id=child["id"])
    earlier = await create_task(client, account, parent_id=top["id"])
    await _delete(client, account, earlier)  # on its own, before the parent
    await _delete(client, account, top)
    _, cursor = await follow_feed(client, account)

    assert (await _restore(client, account, top)).status_code == 200

    shown = {t["id"] for t in (await list_tasks(client, account))["items"]}
    assert shown == {top["id"], child["id"], grandchild["id"]}
    assert [item["id"] for item in (await _trash(client, account))["items"]] == [earlier["id"]]
    changes, _ = await follow_feed(client, account, cursor)
    assert sorted(c["id"] for c in changes) == sorted([top["id"], child["id"], grandchild["id"]])
    assert {c["op"] for c in changes} == {"upsert"}


async def test_a_subtask_whose_parent_is_in_the_trash_answers_409(
    client: httpx.AsyncClient,
) -> None:
    account = await register(client)
    top = await create_task(client, account)
    child = await create_task(client, account, parent_id=top["id"])
    await _delete(client, account, top)

    response = await _restore(client, account, child)

    assert response.status_code == 409
    problem = response.json()
    assert problem["type"] == "urn:taskpipe:problem:parent-deleted"
    assert problem["parent_id"] == top["id"]
    assert (await client.get(f"{TASKS}/{child['id']}", headers=account.headers)).status_code == 404


async def test_a_restore_that_would_nest_too_deep_answers_409(client: httpx.AsyncClient) -> None:
    account = await register(client)
    holder = await create_task(client, account)
    top = await create_task(client, account)
    child = await create_task(client, account, parent_id=top["id"])
    await create_task(client, account, parent_id=child["id"])
    await _delete(client, account, child)
    moved = await client.patch(
        f"{TASKS}/{top['id']}",
        json={"version": top["version"], "parent_id": holder["id"]},
        headers=account.headers,
    )
    assert moved.status_code == 200  # its live subtree is one level now

    response = await _restore(client, account, child)

    assert response.status_code == 409
    assert response.json()["type"] == "urn:taskpipe:problem:subtree-too-deep"
