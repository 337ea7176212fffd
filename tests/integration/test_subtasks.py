"""Subtasks: parents of the same user, at most three levels, no cycles, subtree deletes."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import httpx
import pytest

from common.tasks.repository import TaskRepository
from tests.support.factories import Account, register
from tests.support.tasks import TASKS, create_task, follow_feed, list_tasks


async def _patch(
    client: httpx.AsyncClient, account: Account, task: dict[str, Any], **changes: Any
) -> httpx.Response:
    current = await client.get(f"{TASKS}/{task['id']}", headers=account.headers)
    return await client.patch(
        f"{TASKS}/{task['id']}",
        json={"version": current.json()["version"], **changes},
        headers=account.headers,
    )


async def _chain(client: httpx.AsyncClient, account: Account, levels: int) -> list[dict[str, Any]]:
    """A task with a subtask with a subtask ..., `levels` deep; the top first."""
    chain = [await create_task(client, account)]
    for _ in range(levels - 1):
        chain.append(await create_task(client, account, parent_id=chain[-1]["id"]))
    return chain


def _bad_parent(response: httpx.Response, words: str) -> None:
    assert response.status_code == 400, response.text
    problem = response.json()
    assert problem["errors"][0]["loc"] == ["body", "parent_id"]
    assert words in problem["detail"]


async def test_a_subtask_shows_its_parent_and_the_parent_counts_it(
    client: httpx.AsyncClient,
) -> None:
    account = await register(client)
    parent = await create_task(client, account)
    done = await create_task(client, account, parent_id=parent["id"], status="completed")
    open_one = await create_task(client, account, parent_id=parent["id"])
    assert (done["parent_id"], open_one["parent_id"]) == (parent["id"], parent["id"])

    shown = (await client.get(f"{TASKS}/{parent['id']}", headers=account.headers)).json()
    assert (shown["subtask_count"], shown["completed_subtask_count"]) == (2, 1)
    assert shown["version"] == 1  # counting subtasks is no edit of the parent

    assert (await _patch(client, account, open_one, status="completed")).status_code == 200
    listed = await list_tasks(client, account, top_level="true")
    assert [
        (t["id"], t["subtask_count"], t["completed_subtask_count"]) for t in listed["items"]
    ] == [(parent["id"], 2, 2)]


async def test_the_list_filters_by_parent_and_level(client: httpx.AsyncClient) -> None:
    account = await register(client)
    top, child, grandchild = await _chain(client, account, 3)
    sibling = await create_task(client, account, parent_id=top["id"])

    def ids(page: dict[str, Any]) -> set[str]:
        return {task["id"] for task in page["items"]}

    assert ids(await list_tasks(client, account, parent_id=top["id"])) == {
        child["id"],
        sibling["id"],
    }
    assert ids(await list_tasks(client, account, top_level="true")) == {top["id"]}
    assert ids(await list_tasks(client, account, top_level="false")) == {
        child["id"],
        sibling["id"],
        grandchild["id"],
    }
    response = await client.get(
        TASKS, params={"parent_id": top["id"], "top_level": "true"}, headers=account.headers
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["loc"] == ["query", "top_level"]


async def test_the_subtasks_route_lists_direct_subtasks_oldest_first(
    client: httpx.AsyncClient,
) -> None:
    account = await register(client)
    top, child, _ = await _chain(client, account, 3)
    second = await create_task(client, account, parent_id=top["id"])

    response = await client.get(f"{TASKS}/{top['id']}/subtasks", headers=account.headers)
    assert response.status_code == 200
    assert [task["id"] for task in response.json()["items"]] == [child["id"], second["id"]]

    first_page = await client.get(
        f"{TASKS}/{top['id']}/subtasks", params={"limit": 1}, headers=account.headers
    )
    rest = await client.get(
        f"{TASKS}/{top['id']}/subtasks",
        params={"limit": 1, "cursor": first_page.json()["next_cursor"]},
        headers=account.headers,
    )
    assert [task["id"] for task in rest.json()["items"]] == [second["id"]]

    leaf = await client.get(f"{TASKS}/{second['id']}/subtasks", headers=account.headers)
    assert leaf.status_code == 200 and leaf.json()["items"] == []


async def test_subtasks_of_a_missing_or_foreign_task_are_404(client: httpx.AsyncClient) -> None:
    mine, theirs = await register(client), await register(client)
    their_top, _ = await _chain(client, theirs, 2)
    for task_id in (their_top["id"], "00000000-0000-4000-8000-000000000000"):
        response = await client.get(f"{TASKS}/{task_id}/subtasks", headers=mine.headers)
        assert response.status_code == 404
    assert (await client.get(f"{TASKS}/nope/subtasks", headers=mine.headers)).status_code == 400


async def test_tasks_nest_at_most_three_levels(client: httpx.AsyncClient) -> None:
    account = await register(client)
    top, middle, bottom = await _chain(client, account, 3)

    response = await client.post(
        TASKS, json={"title": "Too deep", "parent_id": bottom["id"]}, headers=account.headers
    )
    _bad_parent(response, "at most 3 levels")

    # A subtree of two levels fits under a top-level task only.
    other_top, other_child = await _chain(client, account, 2)
    _bad_parent(await _patch(client, account, middle, parent_id=other_child["id"]), "3 levels")
    _bad_parent(await _patch(client, account, top, parent_id=other_top["id"]), "brings 3 level")
    moved = await _patch(client, account, middle, parent_id=other_top["id"])
    assert moved.status_code == 200 and moved.json()["parent_id"] == other_top["id"]


@pytest.mark.parametrize("target", [0, 1, 2])
async def test_a_task_never_goes_under_itself_or_its_subtasks(
    client: httpx.AsyncClient, target: int
) -> None:
    account = await register(client)
    chain = await _chain(client, account, 3)
    response = await _patch(client, account, chain[0], parent_id=chain[target]["id"])
    _bad_parent(response, "under itself or one of its own subtasks")


async def test_a_parent_must_be_a_live_task_of_the_same_user(client: httpx.AsyncClient) -> None:
    mine, theirs = await register(client), await register(client)
    their_task = await create_task(client, theirs)
    gone = await create_task(client, mine)
    assert (await client.delete(f"{TASKS}/{gone['id']}", headers=mine.headers)).status_code == 204
    task = await create_task(client, mine)
    for parent_id in (their_task["id"], gone["id"], "00000000-0000-4000-8000-000000000000"):
        created = await client.post(
            TASKS, json={"title": "Child", "parent_id": parent_id}, headers=mine.headers
        )
        _bad_parent(created, "No such task")
        _bad_parent(await _patch(client, mine, task, parent_id=parent_id), "No such task")
    response = await client.post(
        TASKS, json={"title": "Child", "parent_id": "not-a-uuid"}, headers=mine.headers
    )
    assert response.status_code == 400


async def test_a_subtask_can_become_a_top_level_task(client: httpx.AsyncClient) -> None:
    account = await register(client)
    top, child = await _chain(client, account, 2)
    response = await _patch(client, account, child, parent_id=None)
    assert response.status_code == 200 and response.json()["parent_id"] is None
    shown = (await client.get(f"{TASKS}/{top['id']}", headers=account.headers)).json()
    assert shown["subtask_count"] == 0


async def test_completing_a_parent_with_open_subtasks_is_allowed(
    client: httpx.AsyncClient,
) -> None:
    account = await register(client)
    top, child = await _chain(client, account, 2)
    response = await _patch(client, account, top, status="completed")
    assert response.status_code == 200
    assert response.json()["completed_subtask_count"] == 0
    still_open = (await client.get(f"{TASKS}/{child['id']}", headers=account.headers)).json()
    assert still_open["status"] == "pending"


async def test_deleting_a_parent_deletes_its_subtree_one_feed_entry_each(
    client: httpx.AsyncClient,
) -> None:
    account = await register(client)
    top, child, grandchild = await _chain(client, account, 3)
    sibling = await create_task(client, account, parent_id=top["id"])
    unrelated = await create_task(client, account)
    _, cursor = await follow_feed(client, account)

    assert (await client.delete(f"{TASKS}/{top['id']}", headers=account.headers)).status_code == 204

    for task in (top, child, grandchild, sibling):
        response = await client.get(f"{TASKS}/{task['id']}", headers=account.headers)
        assert response.status_code == 404
    assert (await client.get(f"{TASKS}/{unrelated['id']}", headers=account.headers)).is_success
    changes, _ = await follow_feed(client, account, cursor)
    assert sorted((c["id"], c["op"]) for c in changes) == sorted(
        (task["id"], "delete") for task in (top, child, grandchild, sibling)
    )


async def _race(
    live_client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch, *requests: Any
) -> list[httpx.Response]:
    """Send the requests at once: each waits at the tree lock until all are there, and
    lingers once it holds it, so that without the lock their checks would overlap."""
    lock_tree = TaskRepository.lock_tree
    all_there = asyncio.Barrier(len(requests))

    async def wait_then_lock(self: TaskRepository, *args: Any) -> None:
        await asyncio.wait_for(all_there.wait(), timeout=10)
        await lock_tree(self, *args)
        await asyncio.sleep(0.05)

    monkeypatch.setattr(TaskRepository, "lock_tree", wait_then_lock)
    return list(await asyncio.gather(*requests))


async def test_two_concurrent_moves_never_build_a_cycle(
    live_client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    account = await register(live_client)
    first = await create_task(live_client, account)
    second = await create_task(live_client, account)

    def move(task: dict[str, Any], under: dict[str, Any]) -> Any:
        return live_client.patch(
            f"{TASKS}/{task['id']}",
            json={"version": 1, "parent_id": under["id"]},
            headers=account.headers,
        )

    responses = await _race(live_client, monkeypatch, move(first, second), move(second, first))

    assert Counter(r.status_code for r in responses) == {200: 1, 400: 1}
    parents = {
        task["id"]: (
            await live_client.get(f"{TASKS}/{task['id']}", headers=account.headers)
        ).json()["parent_id"]
        for task in (first, second)
    }
    assert list(parents.values()).count(None) == 1


async def test_a_subtask_created_while_its_parent_is_deleted_goes_with_it_or_is_refused(
    live_client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    account = await register(live_client)
    parent = await create_task(live_client, account)

    created, deleted = await _race(
        live_client,
        monkeypatch,
        live_client.post(
            TASKS, json={"title": "Late child", "parent_id": parent["id"]}, headers=account.headers
        ),
        live_client.delete(f"{TASKS}/{parent['id']}", headers=account.headers),
    )

    assert deleted.status_code == 204
    assert created.status_code in (201, 400), created.text
    if created.status_code == 201:
        child = await live_client.get(f"{TASKS}/{created.json()['id']}", headers=account.headers)
        assert child.status_code == 404, "a live subtask under a deleted parent"
