"""Categories: CRUD with per-user case-insensitive names, live task counts, assign and remove."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import pytest

from tests.support.factories import register
from tests.support.tasks import CATEGORIES, TASKS, assign, create_category, create_task, list_tasks


def _url(category_id: str) -> str:
    return f"{CATEGORIES}/{category_id}"


def _link(task_id: str, category_id: str) -> str:
    return f"{TASKS}/{task_id}/categories/{category_id}"


def _fields(response: httpx.Response) -> set[str]:
    return {error["field"] for error in response.json().get("errors", [])}


async def test_create_trims_the_name_and_upper_cases_the_color(client: httpx.AsyncClient) -> None:
    account = await register(client)
    response = await client.post(
        CATEGORIES, json={"name": "  Deep work  ", "color": "#a1b2c3"}, headers=account.headers
    )
    assert response.status_code == 201
    category = response.json()
    assert category["name"] == "Deep work"
    assert category["color"] == "#A1B2C3"
    assert category["task_count"] == 0
    assert response.headers["Location"] == _url(category["id"])
    assert set(category) == {"id", "name", "color", "task_count", "created_at", "updated_at"}
    assert (await create_category(client, account, "No colour"))["color"] is None


async def test_names_are_unique_per_user_regardless_of_case(client: httpx.AsyncClient) -> None:
    account, other = await register(client), await register(client)
    await create_category(client, account, "Errands")
    for name in ("Errands", "ERRANDS", "  errands "):
        response = await client.post(CATEGORIES, json={"name": name}, headers=account.headers)
        assert response.status_code == 409, name
        assert response.json()["type"] == "urn:taskpipe:problem:category-name-taken"
    assert (await create_category(client, other, "errands"))["name"] == "errands"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "name"),
        ({"name": None}, "name"),
        ({"name": "ab"}, "name"),
        ({"name": "   ab  "}, "name"),
        ({"name": "x" * 51}, "name"),
        ({"name": 123}, "name"),
        ({"name": "tab\tname"}, "name"),
        ({"name": "nul\x00name"}, "name"),
        ({"name": "lone \udfff"}, "name"),
        ({"name": "Fine", "color": "red"}, "color"),
        ({"name": "Fine", "color": "#FFF"}, "color"),
        ({"name": "Fine", "color": "#GGGGGG"}, "color"),
        ({"name": "Fine", "color": "123456"}, "color"),
        ({"name": "Fine", "color": "#1234567"}, "color"),
        ({"name": "Fine", "color": 0xFFFFFF}, "color"),
        ({"name": "Fine", "user_id": str(uuid.uuid4())}, "user_id"),
        ({"name": "Fine", "id": str(uuid.uuid4())}, "id"),
        ({"name": "Fine", "task_count": 3}, "task_count"),
    ],
)
async def test_create_rejects_bad_input(
    client: httpx.AsyncClient, body: dict[str, Any], field: str
) -> None:
    account = await register(client)
    response = await client.post(
        CATEGORIES,
        content=json.dumps(body),
        headers={**account.headers, "Content-Type": "application/json"},
    )
    assert response.status_code == 400, response.text
    assert field in _fields(response)


async def test_list_is_sorted_by_name_with_live_task_counts(client: httpx.AsyncClient) -> None:
    account = await register(client)
    work = await create_category(client, account, "work")
    home = await create_category(client, account, "Home", color="#00ff00")
    await create_category(client, account, "Attic")
    kept, deleted = await create_task(client, account), await create_task(client, account)
    for task in (kept, deleted):
        await assign(client, account, task["id"], work["id"])
    await assign(client, account, kept["id"], home["id"])
    await client.delete(f"{TASKS}/{deleted['id']}", headers=account.headers)

    response = await client.get(CATEGORIES, headers=account.headers)
    assert response.status_code == 200
    body = response.json()
    assert body["total"] == 3
    assert [(c["name"], c["task_count"]) for c in body["items"]] == [
        ("Attic", 0),
        ("Home", 1),
        ("work", 1),  # the deleted task does not count
    ]
    assert body["items"][1]["color"] == "#00FF00"
    assert response.headers["ETag"]


async def test_get_one_category(client: httpx.AsyncClient) -> None:
    account, other = await register(client), await register(client)
    category = await create_category(client, account, "Single")
    response = await client.get(_url(category["id"]), headers=account.headers)
    assert response.status_code == 200
    assert response.json() == category
    assert (await client.get(_url(category["id"]), headers=other.headers)).status_code == 404
    assert (await client.get(_url(str(uuid.uuid4())), headers=account.headers)).status_code == 404
    bad = await client.get(_url("nope"), headers=account.headers)
    assert bad.status_code == 400
    assert _fields(bad) == {"category_id"}


async def test_patch_renames_and_recolors(client: httpx.AsyncClient) -> None:
    account = await register(client)
    category = await create_category(client, account, "Old name", color="#111111")
    renamed = await client.patch(
        _url(category["id"]), json={"name": " New name "}, headers=account.headers
    )
    assert renamed.status_code == 200
    assert renamed.json()["name"] == "New name"
    assert renamed.json()["color"] == "#111111"
    recolored = await client.patch(
        _url(category["id"]), json={"color": "#abcdef"}, headers=account.headers
    )
    assert recolored.json()["color"] == "#ABCDEF"
    cleared = await client.patch(
        _url(category["id"]), json={"color": None}, headers=account.headers
    )
    assert cleared.json()["color"] is None
    same_in_other_case = await client.patch(
        _url(category["id"]), json={"name": "NEW NAME"}, headers=account.headers
    )
    assert same_in_other_case.status_code == 200
    nothing = await client.patch(_url(category["id"]), json={}, headers=account.headers)
    assert nothing.status_code == 200
    assert nothing.json()["name"] == "NEW NAME"


async def test_patch_to_a_taken_name_is_409_and_bad_input_is_400(client: httpx.AsyncClient) -> None:
    account = await register(client)
    await create_category(client, account, "Taken")
    category = await create_category(client, account, "Mine")
    response = await client.patch(
        _url(category["id"]), json={"name": "taken"}, headers=account.headers
    )
    assert response.status_code == 409
    assert response.json()["type"] == "urn:taskpipe:problem:category-name-taken"
    still = await client.get(_url(category["id"]), headers=account.headers)
    assert still.json()["name"] == "Mine"
    for body, field in (
        ({"name": None}, "name"),
        ({"name": "x"}, "name"),
        ({"color": "blue"}, "color"),
        ({"id": "x"}, "id"),
    ):
        bad = await client.patch(_url(category["id"]), json=body, headers=account.headers)
        assert bad.status_code == 400, body
        assert field in _fields(bad)


async def test_deleting_a_category_removes_its_links_never_its_tasks(
    client: httpx.AsyncClient,
) -> None:
    account = await register(client)
    category = await create_category(client, account, "Doomed")
    keep = await create_category(client, account, "Kept")
    task = await create_task(client, account)
    await assign(client, account, task["id"], category["id"])
    await assign(client, account, task["id"], keep["id"])
    response = await client.delete(_url(category["id"]), headers=account.headers)
    assert response.status_code == 204
    fetched = (await client.get(f"{TASKS}/{task['id']}", headers=account.headers)).json()
    assert [c["name"] for c in fetched["categories"]] == ["Kept"]
    assert (await client.delete(_url(category["id"]), headers=account.headers)).status_code == 404
    assert (await list_tasks(client, account))["total"] == 1
    names = [
        c["name"] for c in (await client.get(CATEGORIES, headers=account.headers)).json()["items"]
    ]
    assert names == ["Kept"]


async def test_another_users_category_is_404_on_every_route(client: httpx.AsyncClient) -> None:
    owner, intruder = await register(client), await register(client)
    category = await create_category(client, owner, "Private")
    owner_task = await create_task(client, owner)
    await assign(client, owner, owner_task["id"], category["id"])
    intruder_task = await create_task(client, intruder)
    headers = intruder.headers
    responses = [
        await client.get(_url(category["id"]), headers=headers),
        await client.patch(_url(category["id"]), json={"name": "Hijacked"}, headers=headers),
        await client.delete(_url(category["id"]), headers=headers),
        await client.post(_link(intruder_task["id"], category["id"]), headers=headers),
        await client.delete(_link(intruder_task["id"], category["id"]), headers=headers),
        await client.delete(_link(owner_task["id"], category["id"]), headers=headers),
    ]
    assert [r.status_code for r in responses] == [404] * len(responses)
    assert (await client.get(CATEGORIES, headers=headers)).json() == {
        "items": [],
        "total": 0,
        "next_cursor": None,
    }
    still = (await client.get(_url(category["id"]), headers=owner.headers)).json()
    assert still["name"] == "Private"
    assert still["task_count"] == 1


async def test_category_routes_need_a_token(client: httpx.AsyncClient) -> None:
    some_id = str(uuid.uuid4())
    for method, url in [
        ("POST", CATEGORIES),
        ("GET", CATEGORIES),
        ("GET", _url(some_id)),
        ("PATCH", _url(some_id)),
        ("DELETE", _url(some_id)),
    ]:
        assert (await client.request(method, url)).status_code == 401, (method, url)


# Assigning ------------------------------------------------------------------------------


async def test_assign_answers_the_task_with_its_categories_and_bumps_its_version(
    client: httpx.AsyncClient,
) -> None:
    account = await register(client)
    task = await create_task(client, account)
    zeta = await create_category(client, account, "Zeta", color="#000000")
    alpha = await create_category(client, account, "Alpha")
    response = await client.post(_link(task["id"], zeta["id"]), headers=account.headers)
    assert response.status_code == 200
    assigned = response.json()
    assert assigned["version"] == 2
    assert assigned["categories"] == [{"id": zeta["id"], "name": "Zeta", "color": "#000000"}]
    assert response.headers["ETag"]
    both = await assign(client, account, task["id"], alpha["id"])
    assert [c["name"] for c in both["categories"]] == ["Alpha", "Zeta"]  # by name
    assert both["version"] == 3
    # The old version is stale now: a client that read before the assignment gets a 409.
    stale = await client.patch(
        f"{TASKS}/{task['id']}", json={"version": 1, "title": "Stale"}, headers=account.headers
    )
    assert stale.status_code == 409


async def test_assigning_twice_is_400(client: httpx.AsyncClient) -> None:
    account = await register(client)
    task, category = await create_task(client, account), await create_category(client, account)
    await assign(client, account, task["id"], category["id"])
    response = await client.post(_link(task["id"], category["id"]), headers=account.headers)
    assert response.status_code == 400
    assert response.json()["type"] == "urn:taskpipe:problem:category-already-assigned"
    fetched = (await client.get(f"{TASKS}/{task['id']}", headers=account.headers)).json()
    assert fetched["version"] == 2  # the refused assignment changed nothing


async def test_assign_and_remove_with_missing_or_malformed_ids(client: httpx.AsyncClient) -> None:
    account = await register(client)
    task, category = await create_task(client, account), await create_category(client, account)
    missing = str(uuid.uuid4())
    for method in ("POST", "DELETE"):
        for url in (_link(missing, category["id"]), _link(task["id"], missing)):
            response = await client.request(method, url, headers=account.headers)
            assert response.status_code == 404, (method, url)
        for url, field in (
            (_link("x", category["id"]), "task_id"),
            (_link(task["id"], "y"), "category_id"),
        ):
            response = await client.request(method, url, headers=account.headers)
            assert response.status_code == 400
            assert _fields(response) == {field}


async def test_remove_takes_the_category_off_and_bumps_the_version(
    client: httpx.AsyncClient,
) -> None:
    account = await register(client)
    task, category = await create_task(client, account), await create_category(client, account)
    await assign(client, account, task["id"], category["id"])
    response = await client.delete(_link(task["id"], category["id"]), headers=account.headers)
    assert response.status_code == 204
    fetched = (await client.get(f"{TASKS}/{task['id']}", headers=account.headers)).json()
    assert fetched["categories"] == []
    assert fetched["version"] == 3
    again = await client.delete(_link(task["id"], category["id"]), headers=account.headers)
    assert again.status_code == 404
    assert again.json()["detail"] == "The task does not have this category"
