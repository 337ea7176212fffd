"""Personal access tokens: shown once, kept as a hash, limited to their scopes, never reaching
account management, revocable at once, expiring, counted against the user's rate limit."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from api.deps import declared_scopes
from api.main import api_routes
from common.accounts.scopes import ACCOUNT_MANAGEMENT
from common.auth.tokens import hash_token
from common.models import PersonalAccessToken
from tests.support.accounts import ALL_SCOPES, TOKENS, bearer, create_token
from tests.support.factories import register

ME = "/api/v1/users/me"
TASKS = "/api/v1/tasks"
CATEGORIES = "/api/v1/categories"


async def test_the_answer_with_the_secret_is_kept_by_no_cache(client: httpx.AsyncClient) -> None:
    account = await register(client)
    answer = await client.post(
        TOKENS,
        json={"name": "cached?", "scopes": ["account:read"], "expires_in_days": 1},
        headers=account.headers,
    )
    assert answer.status_code == 201
    assert answer.headers["Cache-Control"] == "no-store"
    assert answer.headers["Pragma"] == "no-cache"


async def test_a_token_is_shown_once_and_kept_only_as_a_hash(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    account = await register(client)
    created = await create_token(client, account, ["account:read"], name="backup script")
    assert re.fullmatch(r"tp_pat_[A-Za-z0-9]{40}", created["token"])
    assert created["scopes"] == ["account:read"] and created["name"] == "backup script"
    assert created["last_used_at"] is None
    expires = datetime.fromisoformat(created["expires_at"])
    assert timedelta(days=29) < expires - datetime.now(UTC) <= timedelta(days=30)

    row = (await session.execute(select(PersonalAccessToken))).scalars().one()
    assert row.token_hash == hash_token(created["token"]) and created["token"] not in repr(
        row.__dict__
    )
    listed = (await client.get(TOKENS, headers=account.headers)).json()["items"]
    assert [t["id"] for t in listed] == [created["id"]]
    assert "token" not in listed[0]

    me = await client.get(ME, headers=bearer(created["token"]))
    assert me.status_code == 200 and me.json()["email"] == account.email
    listed = (await client.get(TOKENS, headers=account.headers)).json()["items"]
    assert listed[0]["last_used_at"] is not None


async def test_a_route_outside_the_tokens_scopes_answers_403_naming_the_scope(
    client: httpx.AsyncClient,
) -> None:
    account = await register(client)
    reader = bearer((await create_token(client, account, ["tasks:read"]))["token"])
    assert (await client.get(TASKS, headers=reader)).status_code == 200
    refused = await client.post(TASKS, json={"title": "Write the report"}, headers=reader)
    assert refused.status_code == 403
    problem = refused.json()
    assert problem["type"] == "urn:taskpipe:problem:insufficient-scope"
    assert problem["missing_scopes"] == ["tasks:write"]
    assert "tasks:write" in problem["detail"]
    assert refused.headers["www-authenticate"] == (
        'Bearer error="insufficient_scope", scope="tasks:write"'
    )
    assert (await client.get(CATEGORIES, headers=reader)).status_code == 403
    assert (await client.get(ME, headers=reader)).status_code == 403


async def test_each_scope_opens_exactly_its_routes(client: httpx.AsyncClient) -> None:
    account = await register(client)
    writer = bearer((await create_token(client, account, ["tasks:write", "tasks:read"]))["token"])
    created = await client.post(TASKS, json={"title": "Write the report"}, headers=writer)
    assert created.status_code == 201
    task_id = created.json()["id"]
    assert (await client.get(f"{TASKS}/{task_id}", headers=writer)).status_code == 200

    categories = bearer((await create_token(client, account, ["categories:write"]))["token"])
    made = await client.post(CATEGORIES, json={"name": "Work"}, headers=categories)
    assert made.status_code == 201
    assert (await client.get(CATEGORIES, headers=categories)).status_code == 403


def _account_management_calls(app: FastAPI) -> list[tuple[str, str]]:
    calls = []
    for route in api_routes(app):
        scopes = declared_scopes(route)
        if scopes and ACCOUNT_MANAGEMENT in scopes:
            path = re.sub(r"\{[^}]+\}", str(uuid.uuid4()), route.path)
            calls.extend((method, path) for method in route.methods)
    return calls


async def test_a_token_never_reaches_account_management(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    """Every route declaring account management, walked from the app: a token holding every
    scope it could be granted still gets 403 (before any body is even read)."""
    account = await register(client)
    token = bearer((await create_token(client, account, ALL_SCOPES))["token"])
    calls = _account_management_calls(app)
    assert len(calls) >= 4
    for method, path in calls:
        response = await client.request(method, path, headers=token, json={})
        assert response.status_code == 403, (method, path, response.text)
        assert response.json()["type"] == "urn:taskpipe:problem:session-required"
    logout = await client.post("/api/v1/auth/logout", headers=token)
    assert logout.status_code == 403
    # The session itself reaches them.
    assert (await client.get(TOKENS, headers=account.headers)).status_code == 200


async def test_a_revoked_token_stops_at_once_although_the_process_remembers_it(
    client: httpx.AsyncClient,
) -> None:
    account = await register(client)
    created = await create_token(client, account, ["account:read"])
    token = bearer(created["token"])
    assert (await client.get(ME, headers=token)).status_code == 200  # now remembered
    revoked = await client.delete(f"{TOKENS}/{created['id']}", headers=account.headers)
    assert revoked.status_code == 204
    after = await client.get(ME, headers=token)
    assert after.status_code == 401
    assert (await client.get(TOKENS, headers=account.headers)).json()["items"] == []
    again = await client.delete(f"{TOKENS}/{created['id']}", headers=account.headers)
    assert again.status_code == 404


async def test_an_expired_token_is_refused(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    account = await register(client)
    created = await create_token(client, account, ["account:read"], expires_in_days=1)
    await session.execute(
        update(PersonalAccessToken).values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
    )
    await session.flush()
    response = await client.get(ME, headers=bearer(created["token"]))
    assert response.status_code == 401
    assert response.json()["detail"] == "Token has expired"


@pytest.mark.parametrize(
    "credential",
    [
        "tp_pat_" + "A" * 40,  # well formed, unknown
        "tp_pat_short",
        "tp_pat_" + "é" * 40,
        "tp_pat_" + "A" * 39 + "-",
        "tp_pat_" + "A" * 4000,
    ],
)
async def test_unknown_or_malformed_tokens_are_401(
    client: httpx.AsyncClient, credential: str
) -> None:
    header = f"Bearer {credential}".encode()  # raw bytes: UTF-8 where a client sends it
    response = await client.get(ME, headers={"Authorization": header})  # type: ignore[dict-item]
    assert response.status_code == 401


async def test_another_users_token_cannot_be_revoked_or_seen(client: httpx.AsyncClient) -> None:
    owner, stranger = await register(client), await register(client)
    created = await create_token(client, owner, ["account:read"])
    response = await client.delete(f"{TOKENS}/{created['id']}", headers=stranger.headers)
    assert response.status_code == 404
    assert (await client.get(TOKENS, headers=stranger.headers)).json()["items"] == []
    assert (await client.get(ME, headers=bearer(created["token"]))).status_code == 200


@pytest.mark.parametrize(
    "body",
    [
        {"name": "x", "scopes": []},
        {"name": "x", "scopes": ["tasks:admin"]},
        {"name": "x", "scopes": ["account:manage"]},
        {"name": "x", "scopes": ["tasks:read", "tasks:read"]},
        {"name": "x", "scopes": "tasks:read"},
        {"name": "", "scopes": ["tasks:read"]},
        {"name": "x" * 101, "scopes": ["tasks:read"]},
        {"name": "bad\x00name", "scopes": ["tasks:read"]},
        {"name": "x", "scopes": ["tasks:read"], "expires_in_days": 0},
        {"name": "x", "scopes": ["tasks:read"], "expires_in_days": 367},
        {"name": "x", "scopes": ["tasks:read"], "expires_in_days": "7"},
        {"name": "x", "scopes": ["tasks:read"], "user_id": str(uuid.uuid4())},
        {"scopes": ["tasks:read"]},
    ],
)
async def test_bad_token_requests_are_400(client: httpx.AsyncClient, body: dict[str, Any]) -> None:
    account = await register(client)
    response = await client.post(TOKENS, json=body, headers=account.headers)
    assert response.status_code == 400, response.text


async def test_an_account_holds_a_bounded_number_of_tokens(
    client: httpx.AsyncClient, configure: Any
) -> None:
    configure(personal_tokens_per_user=2)
    account = await register(client)
    for _ in range(2):
        await create_token(client, account, ["tasks:read"])
    response = await client.post(
        TOKENS, json={"name": "third", "scopes": ["tasks:read"]}, headers=account.headers
    )
    assert response.status_code == 409
    assert response.json()["type"] == "urn:taskpipe:problem:too-many-tokens"


async def test_tokens_count_against_the_users_rate_limit(
    client: httpx.AsyncClient, configure: Any
) -> None:
    configure(user_rate_limit=3)
    account = await register(client)
    token = bearer((await create_token(client, account, ["tasks:read"]))["token"])  # 1
    assert (await client.get(TASKS, headers=token)).status_code == 200
    assert (await client.get(TASKS, headers=account.headers)).status_code == 200
    limited = await client.get(TASKS, headers=token)
    assert limited.status_code == 429
    assert "retry-after" in limited.headers
