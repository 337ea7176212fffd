"""With Redis down the API stays up: limits fail open (or closed, by setting) and it is logged."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from api.resources import Resources
from common.auth.tokens import issue_token
from common.config import Settings
from tests.support.accounts import TOKENS, bearer, create_token
from tests.support.factories import PASSWORD, login, register, unique_email
from tests.support.outage import without_redis, without_security_redis

ME = "/api/v1/users/me"
SESSIONS = "/api/v1/users/me/sessions"


@pytest.fixture
async def dead_redis_client(
    app: FastAPI, test_resources: Resources, request: pytest.FixtureRequest
) -> AsyncIterator[httpx.AsyncClient]:
    app.state.resources = without_redis(test_resources, fail_open=request.param)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        yield c
    await app.state.resources.redis.aclose()
    app.state.resources = None


@pytest.mark.parametrize("dead_redis_client", [True], indirect=True)
async def test_fail_open_keeps_the_api_working_but_login_fails_closed(
    dead_redis_client: httpx.AsyncClient,
) -> None:
    account = await register(dead_redis_client)
    me = await dead_redis_client.get("/api/v1/users/me", headers=account.headers)
    assert me.status_code == 200
    assert "RateLimit-Limit" not in me.headers  # nothing was counted
    login = await dead_redis_client.post(
        "/api/v1/auth/login", json={"email": account.email, "password": PASSWORD}
    )
    assert login.status_code == 503, login.text
    assert login.headers["Retry-After"] == "5"
    metrics = (await dead_redis_client.get("/metrics")).text
    assert 'taskpipe_redis_failures_total{operation="rate_limit"}' in metrics
    assert 'taskpipe_redis_failures_total{operation="admission"}' in metrics


@pytest.mark.parametrize("dead_redis_client", [False], indirect=True)
async def test_fail_closed_refuses_rate_limited_routes(
    dead_redis_client: httpx.AsyncClient,
) -> None:
    response = await dead_redis_client.post(
        "/api/v1/auth/register",
        json={"email": unique_email(), "password": PASSWORD, "full_name": "Closed"},
    )
    assert response.status_code == 503
    assert response.json()["type"] == "urn:taskpipe:problem:service-unavailable"
    assert response.headers["Retry-After"] == "5"


@pytest.mark.parametrize("dead_redis_client", [False], indirect=True)
async def test_fail_closed_refuses_authenticated_routes_too(
    dead_redis_client: httpx.AsyncClient, settings: Settings
) -> None:
    token, _ = issue_token(
        settings, user_id=uuid.uuid4(), token_type="access", family_id=uuid.uuid4()
    )
    response = await dead_redis_client.get(
        "/api/v1/users/me", headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"


async def test_credentials_ended_while_the_security_store_is_down_still_stop(
    app: FastAPI, client: httpx.AsyncClient, test_resources: Resources
) -> None:
    """The Redis marks cannot be written or read: PostgreSQL answers for every request until
    the store is back (the job that writes the marks then is `tests/worker/`'s)."""
    account = await register(client)
    other = (await login(client, account.email, PASSWORD)).json()
    token = await create_token(client, account, ["account:read"])
    assert (await client.get(ME, headers=bearer(token["token"]))).status_code == 200  # remembered

    app.state.resources = without_security_redis(test_resources)
    try:
        assert (await client.delete(SESSIONS, headers=account.headers)).status_code == 204
        revoked = await client.delete(f"{TOKENS}/{token['id']}", headers=account.headers)
        assert revoked.status_code == 204
        assert (await client.get(ME, headers=bearer(other["access_token"]))).status_code == 401
        assert (await client.get(ME, headers=bearer(token["token"]))).status_code == 401
        assert (await client.get(ME, headers=account.headers)).status_code == 200
    finally:
        await app.state.resources.security_redis.aclose()
        app.state.resources = test_resources
