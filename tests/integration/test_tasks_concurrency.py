"""Real races against committed data: each request has its own session and connection.

`live_client` commits for real (and truncates afterwards), so the requests gathered here run
concurrently in PostgreSQL and meet on its row locks and unique indexes, not in a shared
test transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest

from common.tasks.batch import TaskBatches
from common.tasks.repository import TaskRepository
from tests.support.factories import register
from tests.support.tasks import CATEGORIES, TASKS, create_category, create_task, list_tasks

RACERS = 8


def _plain_url() -> str:
    return os.environ["TASKPIPE_DATABASE_URL"].replace("postgresql+asyncpg://", "postgresql://")


@contextlib.asynccontextmanager
async def live_client_connection() -> AsyncIterator[asyncpg.Connection]:
    """A connection of its own, outside the API's pool (another client's transaction)."""
    connection = await asyncpg.connect(_plain_url())
    try:
        yield connection
    finally:
        await connection.close()


async def test_racing_patches_with_the_same_version_have_exactly_one_winner(
    live_client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    account = await register(live_client)
    task = await create_task(live_client, account)
    compare_and_set = TaskRepository.update_changed
    all_are_ready = asyncio.Barrier(RACERS)
    outcomes: list[bool] = []

    async def spy(self: TaskRepository, *args: Any, **kwargs: Any) -> Any:
        # Nobody writes until every racer is about to: the conditional UPDATE alone must then
        # pick the one winner.
        await asyncio.wait_for(all_are_ready.wait(), timeout=10)
        outcome = await compare_and_set(self, *args, **kwargs)
        outcomes.append(outcome is not None)
        return outcome

    monkeypatch.setattr(TaskRepository, "update_changed", spy)

    async def edit(i: int) -> httpx.Response:
        return await live_client.patch(
            f"{TASKS}/{task['id']}",
            json={"version": 1, "title": f"Edit {i}"},
            headers=account.headers,
        )

    responses = await asyncio.gather(*(edit(i) for i in range(RACERS)))
    statuses = Counter(r.status_code for r in responses)
    assert statuses == {200: 1, 409: RACERS - 1}, statuses
    (winner,) = [r.json() for r in responses if r.status_code == 200]
    assert winner["version"] == 2
    assert {r.json()["current_version"] for r in responses if r.status_code == 409} == {2}
    final = (await live_client.get(f"{TASKS}/{task['id']}", headers=account.headers)).json()
    assert final["title"] == winner["title"]
    assert final["version"] == 2
    assert sorted(outcomes) == [False] * (RACERS - 1) + [True]


async def test_racing_patches_with_the_same_etag_have_exactly_one_winner(
    live_client: httpx.AsyncClient,
) -> None:
    account = await register(live_client)
    task = await create_task(live_client, account)
    etag = (await live_client.get(f"{TASKS}/{task['id']}", headers=account.headers)).headers["ETag"]

    async def edit(i: int) -> httpx.Response:
        return await live_client.patch(
            f"{TASKS}/{task['id']}",
            json={"priority": ["low", "high"][i % 2], "title": f"Edit {i}"},
            headers={**account.headers, "If-Match": etag},
        )

    responses = await asyncio.gather(*(edit(i) for i in range(RACERS)))
    assert Counter(r.status_code for r in responses) == {200: 1, 412: RACERS - 1}


async def test_racing_patches_with_if_match_star_all_win_in_turn(
    live_client: httpx.AsyncClient,
) -> None:
    """`If-Match: *` is "whatever the current version is": racers never get a 412, each
    write lands once, and the version counts them all."""
    account = await register(live_client)
    task = await create_task(live_client, account)

    async def edit(i: int) -> httpx.Response:
        return await live_client.patch(
            f"{TASKS}/{task['id']}",
            json={"title": f"Edit {i}"},
            headers={**account.headers, "If-Match": "*"},
        )

    responses = await asyncio.gather(*(edit(i) for i in range(RACERS)))
    assert Counter(r.status_code for r in responses) == {200: RACERS}, [r.text for r in responses]
    assert sorted(r.json()["version"] for r in responses) == list(range(2, RACERS + 2))
    final = (await live_client.get(f"{TASKS}/{task['id']}", headers=account.headers)).json()
    assert final["version"] == RACERS + 1
    assert final["title"] == next(
        r.json()["title"] for r in responses if r.json()["version"] == RACERS + 1
    )


async def test_if_match_star_waiting_for_an_assignment_answers_with_its_category(
    live_client: httpx.AsyncClient,
) -> None:
    """A last-writer-wins PATCH that waited for another transaction's row lock answers with
    what that transaction committed (its category), not the snapshot from before the wait."""
    account = await register(live_client)
    task = await create_task(live_client, account)
    category = await create_category(live_client, account, "Assigned meanwhile")
    async with live_client_connection() as other:
        transaction = other.transaction()
        await transaction.start()
        await other.execute(
            "UPDATE tasks SET version = version + 1 WHERE id = $1", uuid.UUID(task["id"])
        )
        await other.execute(
            "INSERT INTO task_categories (task_id, category_id) VALUES ($1, $2)",
            uuid.UUID(task["id"]),
            uuid.UUID(category["id"]),
        )
        patch = asyncio.create_task(
            live_client.patch(
                f"{TASKS}/{task['id']}",
                json={"title": "Waited"},
                headers={**account.headers, "If-Match": "*"},
            )
        )
        await asyncio.sleep(0.3)  # the PATCH is now waiting for the row lock
        assert not patch.done()
        await transaction.commit()
        response = await asyncio.wait_for(patch, timeout=10)
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["title"], body["version"]) == ("Waited", 3)
    assert [c["name"] for c in body["categories"]] == ["Assigned meanwhile"]
    read = await live_client.get(f"{TASKS}/{task['id']}", headers=account.headers)
    assert read.headers["ETag"] == response.headers["ETag"]


async def test_a_race_lost_with_both_version_and_etag_is_a_409_with_the_version(
    live_client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    account = await register(live_client)
    task = await create_task(live_client, account)
    url = f"{TASKS}/{task['id']}"
    etag = (await live_client.get(url, headers=account.headers)).headers["ETag"]
    update_changed = TaskRepository.update_changed

    async def another_write_first(self: TaskRepository, *args: Any, **kwargs: Any) -> Any:
        # Someone else's edit commits between our If-Match check and our UPDATE.
        async with live_client_connection() as connection:
            await connection.execute(
                "UPDATE tasks SET version = version + 1 WHERE id = $1", uuid.UUID(task["id"])
            )
        return await update_changed(self, *args, **kwargs)

    monkeypatch.setattr(TaskRepository, "update_changed", another_write_first)
    response = await live_client.patch(
        url, json={"version": 1, "title": "Late"}, headers={**account.headers, "If-Match": etag}
    )
    assert response.status_code == 409, response.text
    assert response.json()["current_version"] == 2


async def test_a_patch_racing_a_delete_never_fails_with_a_500(
    live_client: httpx.AsyncClient,
) -> None:
    account = await register(live_client)
    for _ in range(3):
        task = await create_task(live_client, account)
        url = f"{TASKS}/{task['id']}"
        patch, delete = await asyncio.gather(
            live_client.patch(url, json={"version": 1, "title": "Racing"}, headers=account.headers),
            live_client.delete(url, headers=account.headers),
        )
        assert delete.status_code == 204
        assert patch.status_code in {200, 404}, patch.text
    assert (await list_tasks(live_client, account))["total"] == 0


async def test_racing_duplicate_categories_give_one_201_and_409s_never_a_500(
    live_client: httpx.AsyncClient,
) -> None:
    account = await register(live_client)
    for round_ in range(3):
        names = [f"Race {round_}", f"RACE {round_}", f"race {round_}", f" Race {round_} "]
        responses = await asyncio.gather(
            *(
                live_client.post(CATEGORIES, json={"name": name}, headers=account.headers)
                for name in names
            )
        )
        statuses = Counter(r.status_code for r in responses)
        assert statuses == {201: 1, 409: len(names) - 1}, [r.text for r in responses]
    listed = (await live_client.get(CATEGORIES, headers=account.headers)).json()
    assert listed["total"] == 3


async def test_racing_renames_to_one_name_give_one_winner(live_client: httpx.AsyncClient) -> None:
    account = await register(live_client)
    first = await create_category(live_client, account, "First")
    second = await create_category(live_client, account, "Second")
    responses = await asyncio.gather(
        *(
            live_client.patch(
                f"{CATEGORIES}/{c['id']}", json={"name": "Winner"}, headers=account.headers
            )
            for c in (first, second)
        )
    )
    assert sorted(r.status_code for r in responses) == [200, 409]


async def test_racing_assignments_of_one_category_give_one_200_and_400s(
    live_client: httpx.AsyncClient,
) -> None:
    account = await register(live_client)
    task = await create_task(live_client, account)
    category = await create_category(live_client, account)
    url = f"{TASKS}/{task['id']}/categories/{category['id']}"
    responses = await asyncio.gather(
        *(live_client.post(url, headers=account.headers) for _ in range(4))
    )
    assert Counter(r.status_code for r in responses) == {200: 1, 400: 3}
    final = (await live_client.get(f"{TASKS}/{task['id']}", headers=account.headers)).json()
    assert final["version"] == 2
    assert len(final["categories"]) == 1


async def test_an_assignment_racing_the_category_delete_never_fails_with_a_500(
    live_client: httpx.AsyncClient,
) -> None:
    account = await register(live_client)
    task = await create_task(live_client, account)
    for _ in range(3):
        category = await create_category(live_client, account)
        assign, delete = await asyncio.gather(
            live_client.post(
                f"{TASKS}/{task['id']}/categories/{category['id']}", headers=account.headers
            ),
            live_client.delete(f"{CATEGORIES}/{category['id']}", headers=account.headers),
        )
        assert delete.status_code == 204
        assert assign.status_code in {200, 404}, assign.text
    final = (await live_client.get(f"{TASKS}/{task['id']}", headers=account.headers)).json()
    assert final["categories"] == []


async def test_concurrent_creates_with_one_idempotency_key_create_one_task(
    live_client: httpx.AsyncClient,
) -> None:
    account = await register(live_client)
    headers = {**account.headers, "Idempotency-Key": "concurrent-create"}
    body: dict[str, Any] = {"title": "Only once"}
    responses = await asyncio.gather(
        *(live_client.post(TASKS, json=body, headers=headers) for _ in range(RACERS))
    )
    statuses = Counter(r.status_code for r in responses)
    assert set(statuses) <= {201, 409}, [r.text for r in responses]
    created = [r for r in responses if r.status_code == 201]
    fresh = [r for r in created if "Idempotent-Replayed" not in r.headers]
    assert len(fresh) == 1
    assert {r.json()["id"] for r in created} == {fresh[0].json()["id"]}
    for response in responses:
        if response.status_code == 409:
            assert response.json()["type"] == "urn:taskpipe:problem:idempotency-request-in-progress"
            assert response.headers["Retry-After"] == "1"
    assert (await list_tasks(live_client, account))["total"] == 1
    replay = await live_client.post(TASKS, json=body, headers=headers)
    assert replay.headers["Idempotent-Replayed"] == "true"


async def test_two_batches_updating_the_same_tasks_in_opposite_orders_never_deadlock(
    live_client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each batch locks its tasks in id order before it writes: the second waits for the
    first, then finds stale versions (409), instead of a deadlock (a 500)."""
    account = await register(live_client)
    tasks = [await create_task(live_client, account) for _ in range(6)]
    update, update_one = TaskBatches.update, TaskRepository.update_changed
    both_started = asyncio.Barrier(2)

    async def together(self: TaskBatches, *args: Any) -> Any:
        await asyncio.wait_for(both_started.wait(), timeout=10)
        return await update(self, *args)

    async def slowly(self: TaskRepository, *args: Any, **kwargs: Any) -> Any:
        await asyncio.sleep(0.02)  # each item takes a while: the two batches interleave
        return await update_one(self, *args, **kwargs)

    monkeypatch.setattr(TaskBatches, "update", together)
    monkeypatch.setattr(TaskRepository, "update_changed", slowly)

    def batch(order: list[dict[str, Any]], title: str) -> Any:
        items = [{"id": task["id"], "version": 1, "title": title} for task in order]
        return live_client.patch(f"{TASKS}/batch", json={"items": items}, headers=account.headers)

    responses = await asyncio.gather(
        batch(tasks, "Forwards"), batch(list(reversed(tasks)), "Backwards")
    )

    assert sorted(r.status_code for r in responses) == [200, 409], [r.text for r in responses]
