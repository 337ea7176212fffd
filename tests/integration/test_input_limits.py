"""Answers never larger than the attack: bodies are size-limited before parsing, and a
validation answer lists at most 20 field errors.

A 1 MB body of 111,846 unknown keys sent to /auth/login, no credentials needed, used to earn a
10.4 MB 400 and 0.6 s of the event loop.
"""

from __future__ import annotations

import httpx
import orjson
import pytest

from api.errors import MAX_FIELD_ERRORS
from tests.support.factories import register
from tests.support.tasks import TASKS


def _unknown_keys(size: int) -> bytes:
    """A JSON object of about `size` bytes (12 a key), every key unknown to every schema."""
    return orjson.dumps({f"k{index:06d}": 0 for index in range(size // 12)})


async def test_a_megabyte_of_unknown_keys_is_refused_before_it_is_parsed(
    client: httpx.AsyncClient,
) -> None:
    body = _unknown_keys(1_000_000)
    response = await client.post(
        "/api/v1/auth/login", content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 413
    assert response.json()["type"] == "urn:taskpipe:problem:payload-too-large"
    assert len(response.content) < 1000


@pytest.mark.parametrize(("path", "limit"), [("/api/v1/auth/login", 16), (TASKS, 64)])
async def test_bodies_over_the_routes_limit_get_413(
    client: httpx.AsyncClient, path: str, limit: int
) -> None:
    account = await register(client)
    body = b'{"title": "' + b"x" * (limit * 1024) + b'"}'
    response = await client.post(
        path, content=body, headers={**account.headers, "Content-Type": "application/json"}
    )
    assert response.status_code == 413
    assert response.json()["detail"] == f"Request bodies are limited to {limit * 1024} bytes"


@pytest.mark.parametrize(("path", "size"), [("/api/v1/auth/login", 15_000), (TASKS, 60_000)])
async def test_a_validation_answer_lists_at_most_20_errors(
    client: httpx.AsyncClient, path: str, size: int
) -> None:
    account = await register(client)
    body = _unknown_keys(size)
    sent = len(orjson.loads(body))
    response = await client.post(
        path, content=body, headers={**account.headers, "Content-Type": "application/json"}
    )
    assert response.status_code == 400
    problem = response.json()
    assert len(problem["errors"]) == MAX_FIELD_ERRORS
    assert f"(first {MAX_FIELD_ERRORS} of " in problem["detail"]
    assert sent > 1000
    assert len(response.content) < 5000


async def test_a_few_errors_are_listed_in_full(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/v1/auth/login", json={"email": "nope", "extra": 1})
    problem = response.json()
    assert {error["field"] for error in problem["errors"]} == {"email", "password", "extra"}
    assert "first" not in problem["detail"]
