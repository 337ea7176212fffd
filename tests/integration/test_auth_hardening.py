"""The smaller auth hardening: token answers uncached, bcrypt's 72 bytes, sessions that end,
logout by access token, a bounded hashing queue and per-IP limits on IPv6 /64s."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import jwt
import pytest
from fastapi import FastAPI
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from api.resources import Resources
from common.models import RefreshTokenFamily
from common.security.passwords import PasswordHasher
from tests.support.factories import PASSWORD, login, refreshed, register, unique_email

ME = "/api/v1/users/me"
REFRESH = "/api/v1/auth/refresh"
LOGOUT = "/api/v1/auth/logout"


def _uncached(response: httpx.Response) -> bool:
    return response.headers.get("Cache-Control") == "no-store" and (
        response.headers.get("Pragma") == "no-cache"
    )


async def test_token_answers_tell_caches_not_to_keep_them(client: httpx.AsyncClient) -> None:
    registered = await client.post(
        "/api/v1/auth/register",
        json={"email": unique_email(), "password": PASSWORD, "full_name": "Ada"},
    )
    logged_in = await login(client, registered.json()["user"]["email"])
    refreshed = await client.post(
        REFRESH, json={"refresh_token": logged_in.json()["refresh_token"]}
    )
    assert [r.status_code for r in (registered, logged_in, refreshed)] == [201, 200, 200]
    assert all(_uncached(r) for r in (registered, logged_in, refreshed))


async def test_a_72_byte_password_does_not_log_in_with_more_appended(
    client: httpx.AsyncClient,
) -> None:
    password = "Aa1-" + "é" * 34  # 4 + 68 = 72 bytes, bcrypt's whole input
    account = await register(client, password=password)
    assert (await login(client, account.email, password)).status_code == 200
    for suffix in ("x", "é", "-anything at all"):
        assert (await login(client, account.email, password + suffix)).status_code == 401


async def test_a_session_ends_at_its_maximum_age_however_often_refreshed(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    account = await register(client)
    token = await refreshed(client, account.refresh_token, times=2)
    # The login was 89 days and 23 hours ago: one more refresh, capped to the hour left.
    family_id = jwt.decode(token, options={"verify_signature": False})["fam"]
    started = datetime.now(UTC) - timedelta(days=90) + timedelta(hours=1)
    await session.execute(
        update(RefreshTokenFamily)
        .where(RefreshTokenFamily.id == family_id)
        .values(created_at=started)
    )
    last = await client.post(REFRESH, json={"refresh_token": token})
    assert last.status_code == 200
    pair = last.json()
    ends = started + timedelta(days=90)
    for issued in (pair["access_token"], pair["refresh_token"]):
        expires = jwt.decode(issued, options={"verify_signature": False})["exp"]
        assert expires <= ends.timestamp()
    assert 0 < pair["expires_in"] <= 3600

    await session.execute(
        update(RefreshTokenFamily)
        .where(RefreshTokenFamily.id == family_id)
        .values(created_at=started - timedelta(hours=2))
    )
    ended = await client.post(REFRESH, json={"refresh_token": pair["refresh_token"]})
    assert ended.status_code == 401
    assert "maximum age" in ended.json()["detail"]


async def test_logout_with_the_access_token_alone_ends_its_session(
    client: httpx.AsyncClient,
) -> None:
    account = await register(client)
    other = (await login(client, account.email)).json()
    response = await client.post(LOGOUT, headers=account.headers)
    assert response.status_code == 204
    assert (await client.get(ME, headers=account.headers)).status_code == 401
    stale = await client.post(REFRESH, json={"refresh_token": account.refresh_token})
    assert stale.status_code == 401
    other_headers = {"Authorization": f"Bearer {other['access_token']}"}
    assert (await client.get(ME, headers=other_headers)).status_code == 200


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer not-a-token"}, {"Authorization": "Basic YTpi"}],
)
async def test_logout_without_credentials_is_401(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    response = await client.post(LOGOUT, headers=headers)
    assert response.status_code == 401
    assert response.json()["type"] == "urn:taskpipe:problem:unauthorized"


async def test_the_hashing_queue_is_bounded(
    app: FastAPI, live_client: httpx.AsyncClient, resources: Resources
) -> None:
    """One hash running, one waiting: the other sign-ins are told at once to come back, and
    their attempts do not count as failures (the password was never checked)."""
    hasher = PasswordHasher(65_536, 3, max_concurrent=1, max_queued=1)
    app.state.resources = dataclasses.replace(resources, hasher=hasher)
    try:
        account = await register(live_client)  # 64 MiB, 3 iterations: about 0.2 s to check
        guesses = [login(live_client, account.email, "Wrong-Guess-1") for _ in range(5)]
        responses = await asyncio.gather(*guesses)
        busy = [response for response in responses if response.status_code == 503]
        assert sorted(response.status_code for response in responses) == [401, 401] + [503] * 3
        assert all(response.headers["Retry-After"] == "1" for response in busy)
        # Two failures counted, not five: three more are allowed before the lock.
        for _ in range(3):
            assert (await login(live_client, account.email, "Wrong-Guess-1")).status_code == 401
        assert (await login(live_client, account.email)).status_code == 423
    finally:
        hasher.shutdown()
        app.state.resources = resources


async def test_per_ip_limits_count_an_ipv6_64_as_one_client(
    app: FastAPI, client: httpx.AsyncClient, configure: Any
) -> None:
    configure(register_rate_limit=2)

    async def register_from(address: str) -> int:
        transport = httpx.ASGITransport(app=app, client=(address, 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            response = await c.post(
                "/api/v1/auth/register",
                json={"email": unique_email(), "password": PASSWORD, "full_name": "Six"},
            )
            return response.status_code

    statuses = [await register_from(f"2001:db8:77:1::{host}") for host in (1, 2, 3)]
    assert statuses == [201, 201, 429]
    assert await register_from("2001:db8:77:2::1") == 201
