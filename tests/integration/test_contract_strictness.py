"""The server accepts exactly what the OpenAPI document says (found by schemathesis).

A 405 names every method the path allows; a PATCH field the server refuses as null is not
nullable in the schema; a date-time is ISO 8601 text, never a number read as a Unix
timestamp; an integer is never a boolean.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.support.factories import register
from tests.support.tasks import CATEGORIES, TASKS, create_task, future


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("PUT", "/api/v1/users/me", "DELETE, GET, PATCH"),
        ("POST", "/api/v1/users/me", "DELETE, GET, PATCH"),
        ("PUT", f"{TASKS}/00000000-0000-0000-0000-000000000000", "DELETE, GET, PATCH"),
        ("PUT", CATEGORIES, "GET, POST"),
        ("DELETE", TASKS, "GET, POST"),
        # Fixed paths beside /tasks/{task_id}: their own methods, not the task's.
        ("OPTIONS", f"{TASKS}/trash", "GET"),
        ("PUT", f"{TASKS}/batch", "PATCH, POST"),
        ("GET", f"{TASKS}/batch", "PATCH, POST"),  # not a 400 for "batch" as a task id
        ("PATCH", f"{TASKS}/trash", "GET"),
    ],
)
async def test_a_405_lists_every_allowed_method(
    client: httpx.AsyncClient, method: str, path: str, allow: str
) -> None:
    account = await register(client)
    response = await client.request(method, path, headers=account.headers)
    assert response.status_code == 405
    assert response.headers["Allow"] == allow
    assert response.json()["type"] == "urn:taskpipe:problem:method-not-allowed"


def _properties(app: FastAPI, schema: str) -> dict[str, Any]:
    properties: dict[str, Any] = app.openapi()["components"]["schemas"][schema]["properties"]
    return properties


@pytest.mark.parametrize(
    ("schema", "fields"),
    [("TaskUpdate", ["title", "priority", "status"]), ("CategoryUpdate", ["name"])],
)
def test_patch_fields_that_refuse_null_are_not_nullable_in_the_schema(
    app: FastAPI, schema: str, fields: list[str]
) -> None:
    properties = _properties(app, schema)
    for field in fields:
        assert "null" not in str(properties[field]), (schema, field, properties[field])
        assert "default" not in properties[field]


def test_fields_that_may_be_null_still_say_so(app: FastAPI) -> None:
    assert {"type": "null"} in _properties(app, "TaskUpdate")["due_date"]["anyOf"]
    assert {"type": "null"} in _properties(app, "CategoryUpdate")["color"]["anyOf"]


async def test_null_in_a_non_nullable_patch_field_is_a_400(client: httpx.AsyncClient) -> None:
    account = await register(client)
    task = await create_task(client, account)
    for field in ("title", "priority", "status"):
        response = await client.patch(
            f"{TASKS}/{task['id']}", json={field: None, "version": 1}, headers=account.headers
        )
        assert response.status_code == 400, field


@pytest.mark.parametrize("due_date", [1893456000, 1893456000.5, "1893456000", "0.5", True])
async def test_a_number_is_not_a_due_date(client: httpx.AsyncClient, due_date: object) -> None:
    account = await register(client)
    created = await client.post(
        TASKS, json={"title": "Numbers", "due_date": due_date}, headers=account.headers
    )
    assert created.status_code == 400, created.text
    assert created.json()["errors"][0]["field"] == "due_date"
    task = await create_task(client, account)
    patched = await client.patch(
        f"{TASKS}/{task['id']}", json={"due_date": due_date, "version": 1}, headers=account.headers
    )
    assert patched.status_code == 400, patched.text


@pytest.mark.parametrize("parameter", ["due_from", "due_to"])
@pytest.mark.parametrize("value", ["1893456000", "0.5", "-1"])
async def test_a_number_is_not_a_date_filter(
    client: httpx.AsyncClient, parameter: str, value: str
) -> None:
    account = await register(client)
    response = await client.get(TASKS, params={parameter: value}, headers=account.headers)
    assert response.status_code == 400, response.text


async def test_date_filters_and_due_dates_still_take_iso_text(client: httpx.AsyncClient) -> None:
    account = await register(client)
    created = await client.post(
        TASKS, json={"title": "Text", "due_date": future()}, headers=account.headers
    )
    assert created.status_code == 201
    listed = await client.get(
        TASKS,
        params={"due_from": "2000-01-01T00:00:00Z", "due_to": "2100-01-01T00:00:00 02:00"},
        headers=account.headers,
    )
    assert listed.status_code == 200
    assert listed.json()["total"] == 1


@pytest.mark.parametrize("value", [True, False, 60.0, "60"])
async def test_reminder_minutes_before_is_an_integer_not_a_boolean(
    client: httpx.AsyncClient, value: object
) -> None:
    account = await register(client)
    response = await client.patch(
        "/api/v1/users/me", json={"reminder_minutes_before": value}, headers=account.headers
    )
    assert response.status_code == 400, response.text
    me = await client.get("/api/v1/users/me", headers=account.headers)
    assert me.json()["reminder_minutes_before"] == 60


async def test_a_version_is_not_a_boolean(client: httpx.AsyncClient) -> None:
    account = await register(client)
    task = await create_task(client, account)
    response = await client.patch(
        f"{TASKS}/{task['id']}", json={"title": "Changed", "version": True}, headers=account.headers
    )
    assert response.status_code == 400
