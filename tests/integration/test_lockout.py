"""The login lockout: a stranger cannot lock an owner out, and a password reset unlocks.

Failures count per account and client network (IPv4 /24, IPv6 /64). The tests sign in from
named client addresses, as the server would see them behind a trusted proxy.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from redis.asyncio import Redis

from api.resources import Resources
from common.config import Settings
from common.db.session import create_engine, create_session_factory
from tests.support.factories import PASSWORD, Account, register
from tests.support.mail_jobs import PASSWORD_RESET, mailed_tokens
from tests.support.outage import without_security_redis

LOGIN = "/api/v1/auth/login"
OWNER = "198.51.100.20"
STRANGER = "203.0.113.7"
STRANGERS_NEIGHBOUR = "203.0.113.200"  # same /24

ClientAt = Callable[[str], AbstractAsyncContextManager[httpx.AsyncClient]]


@pytest.fixture
def client_at(app: FastAPI, client: httpx.AsyncClient) -> ClientAt:
    """`async with client_at("203.0.113.7") as c:` a client calling from that address."""

    @asynccontextmanager
    async def open_client(address: str) -> AsyncIterator[httpx.AsyncClient]:
        transport = httpx.ASGITransport(app=app, client=(address, 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            yield c

    return open_client


async def _login(client: httpx.AsyncClient, account: Account, password: str) -> int:
    response = await client.post(LOGIN, json={"email": account.email, "password": password})
    return response.status_code


async def _fail(client: httpx.AsyncClient, account: Account, times: int) -> list[int]:
    return [await _login(client, account, "Wrong-Guess-1") for _ in range(times)]


async def test_a_strangers_failures_do_not_lock_the_owner_out(
    client_at: ClientAt, client: httpx.AsyncClient
) -> None:
    account = await register(client)
    async with client_at(STRANGER) as stranger, client_at(STRANGERS_NEIGHBOUR) as neighbour:
        assert await _fail(stranger, account, 6) == [401] * 5 + [423]
        assert await _login(stranger, account, PASSWORD) == 423  # even the right password
        assert await _login(neighbour, account, PASSWORD) == 423  # the whole /24
    async with client_at(OWNER) as owner:
        assert await _login(owner, account, PASSWORD) == 200


async def test_ipv6_failures_count_per_64(client_at: ClientAt, client: httpx.AsyncClient) -> None:
    account = await register(client)
    for host in range(1, 6):  # a new address of the same /64 for every guess
        async with client_at(f"2001:db8:aa:1::{host}") as guesser:
            assert await _fail(guesser, account, 1) == [401]
    async with client_at("2001:db8:aa:1::99") as same_64, client_at("2001:db8:bb::1") as other:
        assert await _login(same_64, account, PASSWORD) == 423
        assert await _login(other, account, PASSWORD) == 200


async def test_failures_from_many_networks_lock_the_account_everywhere(
    client_at: ClientAt, client: httpx.AsyncClient, configure: Any
) -> None:
    configure(login_max_failures=2, login_max_account_failures=6)
    account = await register(client)
    for network in range(3):
        async with client_at(f"10.{network}.0.1") as guesser:
            assert await _fail(guesser, account, 2) == [401, 401]
    async with client_at(OWNER) as owner:
        locked = await owner.post(LOGIN, json={"email": account.email, "password": PASSWORD})
    assert locked.status_code == 423
    assert 0 < int(locked.headers["Retry-After"]) <= 900


async def test_networks_the_owner_signed_in_from_are_spared_the_account_wide_lock(
    client_at: ClientAt, client: httpx.AsyncClient, configure: Any
) -> None:
    """A stranger with networks to spare (one IPv6 /48 holds 65,536 /64s) reaches the ceiling;
    the owner still signs in from where they did before, a new network waits."""
    configure(login_max_failures=2, login_max_account_failures=6)
    account = await register(client)
    async with client_at(OWNER) as owner:
        assert await _login(owner, account, PASSWORD) == 200
    for network in range(3):
        async with client_at(f"2001:db8:66:{network}::1") as guesser:
            assert await _fail(guesser, account, 2) == [401, 401]
    async with client_at(OWNER) as owner, client_at("192.0.2.1") as elsewhere:
        assert await _login(elsewhere, account, PASSWORD) == 423
        assert await _login(owner, account, PASSWORD) == 200
        assert await _fail(owner, account, 3) == [401, 401, 423]  # its own lock still holds


async def test_a_password_reset_lifts_every_lock(
    client_at: ClientAt,
    client: httpx.AsyncClient,
    broker: Redis,
    settings: Settings,
    configure: Any,
) -> None:
    configure(login_max_failures=2, login_max_account_failures=4)
    account = await register(client)
    for network in range(2):
        async with client_at(f"10.{network}.0.1") as guesser:
            await _fail(guesser, account, 2)
    assert await _login(client, account, PASSWORD) == 423
    await client.post("/api/v1/auth/forgot-password", json={"email": account.email})
    (token,) = await mailed_tokens(broker, settings, PASSWORD_RESET)
    reset = await client.post(
        "/api/v1/auth/reset-password", json={"token": token, "new_password": "Brand-New-Secret-7"}
    )
    assert reset.status_code == 200
    assert await _login(client, account, "Brand-New-Secret-7") == 200
    async with client_at("10.0.0.1") as former_guesser:  # its network lock went too
        assert await _login(former_guesser, account, "Brand-New-Secret-7") == 200


async def test_a_success_forgives_its_own_networks_failures(
    client: httpx.AsyncClient,
) -> None:
    account = await register(client)
    for _ in range(3):
        assert await _fail(client, account, 4) == [401] * 4
        assert await _login(client, account, PASSWORD) == 200


async def test_login_fails_closed_without_the_security_store(
    app: FastAPI, client: httpx.AsyncClient, test_resources: Resources
) -> None:
    account = await register(client)
    app.state.resources = without_security_redis(test_resources, fail_open=True)
    try:
        response = await client.post(LOGIN, json={"email": account.email, "password": PASSWORD})
    finally:
        await app.state.resources.security_redis.aclose()
        app.state.resources = test_resources
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    assert response.json()["type"] == "urn:taskpipe:problem:service-unavailable"


async def test_logins_that_meet_a_database_outage_are_not_failures(
    app: FastAPI, client: httpx.AsyncClient, test_resources: Resources
) -> None:
    account = await register(client)
    dead = create_engine(
        test_resources.settings.model_copy(
            update={"database_url": "postgresql+asyncpg://postgres@127.0.0.1:1/none"}
        )
    )
    app.state.resources = dataclasses.replace(
        test_resources, session_factory=create_session_factory(dead)
    )
    try:
        for _ in range(6):
            assert await _login(client, account, PASSWORD) == 503
    finally:
        app.state.resources = test_resources
        await dead.dispose()
    assert await _login(client, account, PASSWORD) == 200
