"""Tasks: create, read, update with optimistic locking, delete, idempotent create, hostile input."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from tests.support.factories import Account, register
from tests.support.tasks import (
    TASKS,
    assign,
    create_category,
    create_task,
    future,
    list_tasks,
    past,
)

PROBLEM = "application/problem+json"


def _url(task_id: str) -> str:
    return f"{TASKS}/{task_id}"


def _fields(response: httpx.Response) -> set[str]:
    return {error["field"] for error in response.json().get("errors", [])}


async def _patch(
    client: httpx.AsyncClient,
    account: Account,
    task: dict[str, Any],
    headers: dict[str, str] | None = None,
    **body: Any,
) -> httpx.Response:
    return await client.patch(
        _url(task["id"]), json=body, headers={**account.headers, **(headers or {})}
    )


# Create ---------------------------------------------------------------------------------


async def test_create_returns_the_task_with_defaults_location_and_etag(
    client: httpx.AsyncClient,
) -> None:
    account = await register(client)
    due = datetime.now(UTC) + timedelta(days=3)
    response = await client.post(
        TASKS,
        json={
            "title": "  Write the report  ",
            "description": "  Numbers first\nthen prose  ",
            "due_date": due.astimezone(timezone(timedelta(hours=2))).isoformat(),
        },
        headers=account.headers,
    )
    assert response.status_code == 201, response.text
    task = response.json()
    assert task["title"] == "Write the report"
    assert task["description"] == "Numbers first\nthen prose"
    assert task["status"] == "pending"
    assert task["priority"] == "medium"
    assert task["categories"] == []
    assert task["version"] == 1
    assert task["completed_at"] is None
    assert datetime.fromisoformat(task["due_date"]) == due
    assert task["due_date"].endswith("Z")  # normalised to UTC
    assert task["created_at"] == task["updated_at"]
    assert response.headers["Location"] == _url(task["id"])
    assert response.headers["ETag"].startswith('"')
    assert response.headers["content-type"] == "application/json"
    uuid.UUID(task["id"])
    assert set(task) == {
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
        "recurrence",
    }
    assert task["recurrence"] is None
    assert (task["parent_id"], task["subtask_count"], task["completed_subtask_count"]) == (
        None,
        0,
        0,
    )


async def test_every_answer_shows_the_tasks_own_categories_only(
    client: httpx.AsyncClient,
) -> None:
    """Other tasks' categories (this user's and another's) never leak into a task's answer,
    whichever statement produced it: create, read, list, update or assignment."""
    other = await register(client)
    other_task = await create_task(client, other)
    await assign(
        client, other, other_task["id"], (await create_category(client, other, "Theirs"))["id"]
    )
    account = await register(client)
    labelled = await create_task(client, account)
    work = await create_category(client, account, "Work")
    home = await create_category(client, account, "Home")
    await assign(client, account, labelled["id"], work["id"])
    assigned = await assign(client, account, labelled["id"], home["id"])
    assert [c["name"] for c in assigned["categories"]] == ["Home", "Work"]

    created = await create_task(client, account)
    assert created["categories"] == []
    url = f"{TASKS}/{created['id']}"
    read = (await client.get(url, headers=account.headers)).json()
    assert read["categories"] == []
    edited = await client.patch(
        url, json={"version": 1, "title": "Edited"}, headers=account.headers
    )
    assert edited.json()["categories"] == []
    listed = {t["id"]: t["categories"] for t in (await list_tasks(client, account))["items"]}
    assert listed[created["id"]] == []
    assert [c["name"] for c in listed[labelled["id"]]] == ["Home", "Work"]


async def test_create_accepts_priority_and_status_and_completes(client: httpx.AsyncClient) -> None:
    account = await register(client)
    task = await create_task(client, account, priority="high", status="completed")
    assert task["priority"] == "high"
    assert task["status"] == "completed"
    assert task["completed_at"] is not None


async def test_an_empty_description_is_stored_as_none(client: httpx.AsyncClient) -> None:
    account = await register(client)
    assert (await create_task(client, account, description="   "))["description"] is None


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "title"),
        ({"title": None}, "title"),
        ({"title": "ab"}, "title"),
        ({"title": "   ab   "}, "title"),
        ({"title": "     "}, "title"),
        ({"title": "x" * 201}, "title"),
        ({"title": 12345}, "title"),
        ({"title": ["a list"]}, "title"),
        ({"title": "nul\x00byte"}, "title"),
        ({"title": "line\nbreak"}, "title"),
        ({"title": "bell\x07"}, "title"),
        ({"title": "lone \ud800 surrogate"}, "title"),
        ({"title": "ok title", "description": "x" * 2001}, "description"),
        ({"title": "ok title", "description": "x" * 20_000}, "description"),
        ({"title": "ok title", "description": "nul\x00"}, "description"),
        ({"title": "ok title", "description": 42}, "description"),
        ({"title": "ok title", "due_date": "2030-01-01T10:00:00"}, "due_date"),
        ({"title": "ok title", "due_date": "2030-01-01"}, "due_date"),
        ({"title": "ok title", "due_date": "tomorrow"}, "due_date"),
        ({"title": "ok title", "due_date": "9999-12-31T23:00:00-14:00"}, "due_date"),
        ({"title": "ok title", "due_date": past()}, "due_date"),
        ({"title": "ok title", "priority": "urgent"}, "priority"),
        ({"title": "ok title", "priority": "HIGH"}, "priority"),
        ({"title": "ok title", "priority": 3}, "priority"),
        ({"title": "ok title", "status": "done"}, "status"),
        ({"title": "ok title", "status": None}, "status"),
        ({"title": "ok title", "user_id": str(uuid.uuid4())}, "user_id"),
        ({"title": "ok title", "id": str(uuid.uuid4())}, "id"),
        ({"title": "ok title", "created_at": "2026-01-01T00:00:00Z"}, "created_at"),
        ({"title": "ok title", "version": 7}, "version"),
        ({"title": "ok title", "categories": []}, "categories"),
    ],
)
async def test_create_rejects_bad_input_naming_the_field(
    client: httpx.AsyncClient, body: dict[str, Any], field: str
) -> None:
    account = await register(client)
    # json.dumps escapes non-ASCII, so even a lone surrogate travels (as `\ud800`).
    response = await client.post(
        TASKS,
        content=json.dumps(body),
        headers={**account.headers, "Content-Type": "application/json"},
    )
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == PROBLEM
    assert field in _fields(response)
    assert (await list_tasks(client, account))["total"] == 0


@pytest.mark.parametrize("content", [b"[]", b'"title"', b"{not json", b"", b"null"])
async def test_create_rejects_a_body_that_is_not_an_object(
    client: httpx.AsyncClient, content: bytes
) -> None:
    account = await register(client)
    response = await client.post(
        TASKS, content=content, headers={**account.headers, "Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["type"] == "urn:taskpipe:problem:validation-error"


async def test_sql_and_markup_in_text_are_stored_verbatim(client: httpx.AsyncClient) -> None:
    account = await register(client)
    title = "'); DROP TABLE tasks;-- <script>alert(1)</script> ✓ 日本語 👩‍💻"
    task = await create_task(client, account, title=title)
    fetched = (await client.get(_url(task["id"]), headers=account.headers)).json()
    assert fetched["title"] == title


# Read -----------------------------------------------------------------------------------


async def test_get_returns_the_task_with_an_etag_and_honours_if_none_match(
    client: httpx.AsyncClient,
) -> None:
    account = await register(client)
    task = await create_task(client, account)
    response = await client.get(_url(task["id"]), headers=account.headers)
    assert response.status_code == 200
    assert response.json() == task
    etag = response.headers["ETag"]
    assert response.headers["Cache-Control"] == "private, no-cache"

    for header in (etag, f"W/{etag}", f'"other", {etag}', "*"):
        cached = await client.get(
            _url(task["id"]), headers={**account.headers, "If-None-Match": header}
        )
        assert cached.status_code == 304, header
        assert cached.content == b""
        assert cached.headers["ETag"] == etag
    stale = await client.get(_url(task["id"]), headers={**account.headers, "If-None-Match": '"x"'})
    assert stale.status_code == 200


async def test_get_unknown_task_is_404_and_malformed_id_is_400(client: httpx.AsyncClient) -> None:
    account = await register(client)
    missing = await client.get(_url(str(uuid.uuid4())), headers=account.headers)
    assert missing.status_code == 404
    assert missing.json()["type"] == "urn:taskpipe:problem:not-found"
    for bad in ("not-a-uuid", "1", "%00", "' OR 1=1 --"):
        response = await client.get(_url(bad), headers=account.headers)
        assert response.status_code == 400, bad
        assert _fields(response) == {"task_id"}


# Update ---------------------------------------------------------------------------------


async def test_patch_with_the_current_version_changes_only_what_is_sent(
    client: httpx.AsyncClient,
) -> None:
    account = await register(client)
    task = await create_task(client, account, description="keep me", priority="low")
    etag = (await client.get(_url(task["id"]), headers=account.headers)).headers["ETag"]
    response = await _patch(client, account, task, version=1, title="Renamed task")
    assert response.status_code == 200, response.text
    updated = response.json()
    assert updated["title"] == "Renamed task"
    assert updated["description"] == "keep me"
    assert updated["priority"] == "low"
    assert updated["version"] == 2
    assert updated["updated_at"] > task["updated_at"]
    assert updated["created_at"] == task["created_at"]
    assert response.headers["ETag"] != etag
    after = await client.get(_url(task["id"]), headers=account.headers)
    assert after.json() == updated
    assert after.headers["ETag"] == response.headers["ETag"]


async def test_patch_with_a_stale_version_is_409_with_the_current_version(
    client: httpx.AsyncClient,
) -> None:
    account = await register(client)
    task = await create_task(client, account)
    assert (await _patch(client, account, task, version=1, title="First edit")).status_code == 200
    response = await _patch(client, account, task, version=1, title="Lost update")
    assert response.status_code == 409
    problem = response.json()
    assert problem["type"] == "urn:taskpipe:problem:version-conflict"
    assert problem["current_version"] == 2
    current = (await client.get(_url(task["id"]), headers=account.headers)).json()
    assert current["title"] == "First edit"
    assert (await _patch(client, account, task, version=9, title="Future")).status_code == 409


async def test_patch_with_if_match_uses_the_etag(client: httpx.AsyncClient) -> None:
    account = await register(client)
    task = await create_task(client, account)
    etag = (await client.get(_url(task["id"]), headers=account.headers)).headers["ETag"]
    response = await _patch(client, account, task, {"If-Match": etag}, title="Via ETag")
    assert response.status_code == 200
    assert response.json()["version"] == 2
    stale = await _patch(client, account, task, {"If-Match": etag}, title="Stale ETag")
    assert stale.status_code == 412
    assert stale.json()["type"] == "urn:taskpipe:problem:precondition-failed"
    weak = await _patch(
        client, account, task, {"If-Match": "W/" + response.headers["ETag"]}, title="Weak tag"
    )
    assert weak.status_code == 412  # If-Match compares strongly
    fresh = await _patch(
        client, account, task, {"If-Match": response.headers["ETag"]}, title="Fresh ETag"
    )
    assert fresh.status_code == 200
    anything = await _patch(client, account, task, {"If-Match": "*"}, title="Last writer wins")
    assert anything.status_code == 200
    assert anything.json()["version"] == 4


async def test_patch_with_good_if_match_but_stale_version_is_409(
    client: httpx.AsyncClient,
) -> None:
    account = await register(client)
    task = await create_task(client, account)
    etag = (await client.get(_url(task["id"]), headers=account.headers)).headers["ETag"]
    response = await _patch(client, account, task, {"If-Match": etag}, version=5, title="Both")
    assert response.status_code == 409
    assert response.json()["current_version"] == 1


async def test_patch_without_version_or_if_match_is_428(client: httpx.AsyncClient) -> None:
    account = await register(client)
    task = await create_task(client, account)
    response = await _patch(client, account, task, title="No precondition")
    assert response.status_code == 428
    assert response.json()["type"] == "urn:taskpipe:problem:precondition-required"


async def test_patch_sending_unchanged_values_writes_nothing(client: httpx.AsyncClient) -> None:
    account = await register(client)
    task = await create_task(client, account)
    response = await _patch(client, account, task, version=1, title=task["title"])
    assert response.status_code == 200
    assert response.json() == task
    assert (await _patch(client, account, task, version=1)).json()["version"] == 1


async def test_completing_sets_completed_at_and_reopening_clears_it(
    client: httpx.AsyncClient,
) -> None:
    account = await register(client)
    task = await create_task(client, account)
    done = (await _patch(client, account, task, version=1, status="completed")).json()
    assert done["completed_at"] is not None
    again = (await _patch(client, account, task, version=2, status="completed")).json()
    assert again["completed_at"] == done["completed_at"]  # unchanged status: nothing written
    reopened = (await _patch(client, account, task, version=2, status="in_progress")).json()
    assert reopened["completed_at"] is None
    cancelled = (await _patch(client, account, task, version=3, status="cancelled")).json()
    assert cancelled["completed_at"] is None


async def test_changing_the_due_date_rearms_the_reminder(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    account = await register(client)
    task = await create_task(client, account, due_date=future(2))
    await session.execute(
        text("UPDATE tasks SET reminder_sent_at = now() WHERE id = :id"), {"id": task["id"]}
    )

    async def reminder_sent_at() -> Any:
        return await session.scalar(
            text("SELECT reminder_sent_at FROM tasks WHERE id = :id"), {"id": task["id"]}
        )

    await _patch(client, account, task, version=1, title="Title only")
    assert await reminder_sent_at() is not None
    response = await _patch(client, account, task, version=2, due_date=future(5))
    assert response.status_code == 200
    assert await reminder_sent_at() is None


async def test_due_date_and_description_can_be_cleared_but_title_cannot(
    client: httpx.AsyncClient,
) -> None:
    account = await register(client)
    task = await create_task(client, account, due_date=future(), description="text")
    cleared = await _patch(client, account, task, version=1, due_date=None, description=None)
    assert cleared.status_code == 200
    assert cleared.json()["due_date"] is None
    assert cleared.json()["description"] is None
    for field in ("title", "status", "priority"):
        response = await _patch(client, account, task, version=2, **{field: None})
        assert response.status_code == 400
        assert _fields(response) == {field}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"version": 1, "title": "no"}, "title"),
        ({"version": 1, "due_date": "2030-01-01T00:00:00"}, "due_date"),
        ({"version": 1, "status": "archived"}, "status"),
        ({"version": 0}, "version"),
        ({"version": -1}, "version"),
        ({"version": 2**31}, "version"),
        ({"version": 10**30}, "version"),
        ({"version": "one"}, "version"),
        ({"version": 1.5}, "version"),
        ({"version": 1, "user_id": str(uuid.uuid4())}, "user_id"),
        ({"version": 1, "id": str(uuid.uuid4())}, "id"),
        ({"version": 1, "completed_at": "2030-01-01T00:00:00Z"}, "completed_at"),
    ],
)
async def test_patch_rejects_bad_input(
    client: httpx.AsyncClient, body: dict[str, Any], field: str
) -> None:
    account = await register(client)
    task = await create_task(client, account)
    response = await client.patch(_url(task["id"]), json=body, headers=account.headers)
    assert response.status_code == 400, response.text
    assert field in _fields(response)


async def test_patch_to_a_past_due_date_is_400_but_another_field_change_is_fine(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    account = await register(client)
    task = await create_task(client, account, due_date=future())
    response = await _patch(client, account, task, version=1, due_date=past())
    assert response.status_code == 400
    assert _fields(response) == {"due_date"}
    # A task whose due date has passed can still be edited, even when the client echoes it.
    await session.execute(
        text("UPDATE tasks SET due_date = now() - interval '1 day' WHERE id = :id"),
        {"id": task["id"]},
    )
    current = (await client.get(_url(task["id"]), headers=account.headers)).json()
    echoed = await _patch(
        client, account, task, version=1, due_date=current["due_date"], title="Still editable"
    )
    assert echoed.status_code == 200, echoed.text


# Delete ---------------------------------------------------------------------------------


async def test_a_deleted_task_is_404_for_every_read_and_write(client: httpx.AsyncClient) -> None:
    account = await register(client)
    task = await create_task(client, account)
    category = await create_category(client, account)
    response = await client.delete(_url(task["id"]), headers=account.headers)
    assert response.status_code == 204
    assert response.content == b""

    headers = account.headers
    assert (await client.get(_url(task["id"]), headers=headers)).status_code == 404
    assert (await _patch(client, account, task, version=2, title="Zombie")).status_code == 404
    assert (
        await _patch(client, account, task, {"If-Match": "*"}, title="Zombie")
    ).status_code == 404
    assert (await client.delete(_url(task["id"]), headers=headers)).status_code == 404
    link = f"{_url(task['id'])}/categories/{category['id']}"
    assert (await client.post(link, headers=headers)).status_code == 404
    assert (await client.delete(link, headers=headers)).status_code == 404
    assert (await list_tasks(client, account))["items"] == []


async def test_delete_with_if_match_is_conditional(client: httpx.AsyncClient) -> None:
    account = await register(client)
    task = await create_task(client, account)
    old = (await client.get(_url(task["id"]), headers=account.headers)).headers["ETag"]
    await _patch(client, account, task, version=1, title="Changed since")
    stale = await client.delete(_url(task["id"]), headers={**account.headers, "If-Match": old})
    assert stale.status_code == 412
    current = (await client.get(_url(task["id"]), headers=account.headers)).headers["ETag"]
    ok = await client.delete(_url(task["id"]), headers={**account.headers, "If-Match": current})
    assert ok.status_code == 204


# Other users ----------------------------------------------------------------------------


async def test_another_users_task_is_404_on_every_route(client: httpx.AsyncClient) -> None:
    owner = await register(client)
    intruder = await register(client)
    task = await create_task(client, owner)
    owner_category = await create_category(client, owner)
    intruder_category = await create_category(client, intruder)
    etag = (await client.get(_url(task["id"]), headers=owner.headers)).headers["ETag"]
    url = _url(task["id"])
    headers = intruder.headers

    responses = [
        await client.get(url, headers=headers),
        await client.get(url, headers={**headers, "If-None-Match": etag}),
        await client.patch(url, json={"version": 1, "title": "Mine now"}, headers=headers),
        await client.patch(url, json={"title": "Mine now"}, headers={**headers, "If-Match": etag}),
        await client.delete(url, headers=headers),
        await client.delete(url, headers={**headers, "If-Match": etag}),
        await client.post(f"{url}/categories/{intruder_category['id']}", headers=headers),
        await client.post(f"{url}/categories/{owner_category['id']}", headers=headers),
        await client.delete(f"{url}/categories/{owner_category['id']}", headers=headers),
    ]
    assert [r.status_code for r in responses] == [404] * len(responses)
    missing = await client.get(_url(str(uuid.uuid4())), headers=headers)
    assert responses[0].json()["detail"] == missing.json()["detail"]  # indistinguishable
    assert (await list_tasks(client, intruder))["total"] == 0
    unchanged = (await client.get(url, headers=owner.headers)).json()
    assert unchanged == task


async def test_every_route_needs_a_valid_token(client: httpx.AsyncClient) -> None:
    some_id = str(uuid.uuid4())
    calls = [
        ("POST", TASKS),
        ("GET", TASKS),
        ("GET", _url(some_id)),
        ("PATCH", _url(some_id)),
        ("DELETE", _url(some_id)),
        ("POST", f"{_url(some_id)}/categories/{some_id}"),
        ("DELETE", f"{_url(some_id)}/categories/{some_id}"),
    ]
    for method, url in calls:
        for headers in ({}, {"Authorization": "Bearer not-a-jwt"}, {"Authorization": "Basic x"}):
            response = await client.request(method, url, headers=headers)
            assert response.status_code == 401, (method, url, headers)
            assert response.headers["WWW-Authenticate"] == "Bearer"


# Idempotency ----------------------------------------------------------------------------


async def test_a_retried_create_with_the_same_key_returns_the_first_response(
    client: httpx.AsyncClient,
) -> None:
    account = await register(client)
    headers = {**account.headers, "Idempotency-Key": str(uuid.uuid4())}
    body = {"title": "Pay the rent", "due_date": future()}
    first = await client.post(TASKS, json=body, headers=headers)
    again = await client.post(TASKS, json=body, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert again.headers["Location"] == first.headers["Location"]
    assert (await list_tasks(client, account))["total"] == 1


async def test_the_same_key_with_another_body_is_422(client: httpx.AsyncClient) -> None:
    account = await register(client)
    headers = {**account.headers, "Idempotency-Key": "order-42"}
    assert (
        await client.post(TASKS, json={"title": "First body"}, headers=headers)
    ).status_code == 201
    response = await client.post(TASKS, json={"title": "Other body"}, headers=headers)
    assert response.status_code == 422
    assert response.json()["type"] == "urn:taskpipe:problem:idempotency-key-reused"
    assert (await list_tasks(client, account))["total"] == 1


async def test_idempotency_keys_belong_to_their_user(client: httpx.AsyncClient) -> None:
    first, second = await register(client), await register(client)
    for account in (first, second):
        response = await client.post(
            TASKS,
            json={"title": "Same key, same body"},
            headers={**account.headers, "Idempotency-Key": "shared"},
        )
        assert response.status_code == 201
        assert "Idempotent-Replayed" not in response.headers
    assert (await list_tasks(client, second))["total"] == 1


async def test_a_failed_create_releases_its_key(client: httpx.AsyncClient) -> None:
    account = await register(client)
    headers = {**account.headers, "Idempotency-Key": "retry-me"}
    failed = await client.post(TASKS, json={"title": "Late", "due_date": past()}, headers=headers)
    assert failed.status_code == 400
    fixed = await client.post(TASKS, json={"title": "Late", "due_date": future()}, headers=headers)
    assert fixed.status_code == 201


@pytest.mark.parametrize("key", ["", "x" * 256, "naïve-ключ", "has space", "tab\tkey"])
async def test_a_malformed_idempotency_key_is_400(client: httpx.AsyncClient, key: str) -> None:
    account = await register(client)
    response = await client.post(
        TASKS,
        json={"title": "Keyed"},
        headers={**account.headers, "Idempotency-Key": key.encode()},
    )
    assert response.status_code == 400
    assert _fields(response) == {"Idempotency-Key"}


# OpenAPI --------------------------------------------------------------------------------

ROUTES = {
    ("/api/v1/tasks", "post"): {"400", "401", "409", "422"},
    ("/api/v1/tasks", "get"): {"304", "400", "401"},
    ("/api/v1/tasks/{task_id}", "get"): {"304", "400", "401", "404"},
    ("/api/v1/tasks/{task_id}", "patch"): {"400", "401", "404", "409", "412", "428"},
    ("/api/v1/tasks/{task_id}", "delete"): {"400", "401", "404", "412"},
    ("/api/v1/tasks/{task_id}/categories/{category_id}", "post"): {"400", "401", "404"},
    ("/api/v1/tasks/{task_id}/categories/{category_id}", "delete"): {"400", "401", "404"},
    ("/api/v1/categories", "post"): {"400", "401", "409"},
    ("/api/v1/categories", "get"): {"401"},
    ("/api/v1/categories/{category_id}", "get"): {"400", "401", "404"},
    ("/api/v1/categories/{category_id}", "patch"): {"400", "401", "404", "409"},
    ("/api/v1/categories/{category_id}", "delete"): {"400", "401", "404"},
}


async def test_openapi_documents_every_route_its_errors_and_examples(
    client: httpx.AsyncClient,
) -> None:
    spec = (await client.get("/openapi.json")).json()
    for (path, method), errors in ROUTES.items():
        operation = spec["paths"][path][method]
        assert errors <= set(operation["responses"]), (path, method)
        assert operation["summary"] and operation["description"], (path, method)
        for status in errors - {"304"}:
            content = operation["responses"][status]["content"]
            assert content["application/problem+json"]["schema"] == {
                "$ref": "#/components/schemas/Problem"
            }
    schemas = spec["components"]["schemas"]
    for name in (
        "TaskOut",
        "TaskPage",
        "TaskCreate",
        "TaskUpdate",
        "CategoryOut",
        "CategoryCreate",
    ):
        properties = schemas[name]["properties"]
        with_examples = [p for p in properties.values() if "examples" in p or "$ref" in p]
        assert with_examples, name
    assert "404" in spec["paths"]["/api/v1/tasks/{task_id}"]["get"]["responses"]
    assert "exactly like" in spec["paths"]["/api/v1/tasks/{task_id}"]["get"]["description"]
