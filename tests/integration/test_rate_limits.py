"""Per-user limits on authenticated routes, per-session limits on refresh, and the security store.

One tenant must not be able to exhaust what every tenant shares: request capacity, the cache,
the refresh-token table, or the Redis that holds limits, lockouts and revocations.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from redis.asyncio import Redis

from api.resources import Resources
from common.cache import ResponseCache
from tests.support.factories import Account, refreshed, register
from tests.support.outage import with_security_store
from tests.support.redis_server import RedisServer
from tests.support.tasks import TASKS, cache_requests, create_task

ME = "/api/v1/users/me"
REFRESH = "/api/v1/auth/refresh"


async def test_authenticated_answers_carry_the_rate_limit_headers(
    client: httpx.AsyncClient,
) -> None:
    account = await register(client)
    first = await client.get(ME, headers=account.headers)
    second = await client.get(f"{TASKS}/not-a-uuid", headers=account.headers)
    assert first.status_code == 200
    assert first.headers["RateLimit-Limit"] == "600"
    assert first.headers["RateLimit-Remaining"] == "599"
    assert 1 <= int(first.headers["RateLimit-Reset"]) <= 60
    assert second.status_code == 400  # errors count and carry them too
    assert second.headers["RateLimit-Remaining"] == "598"
    assert "RateLimit-Limit" not in (await client.get("/health")).headers


async def test_past_the_limit_a_user_gets_429_with_retry_after(
    client: httpx.AsyncClient, configure: Any
) -> None:
    configure(user_rate_limit=3, user_rate_limit_window_seconds=60)
    account = await register(client)
    statuses = [(await client.get(ME, headers=account.headers)).status_code for _ in range(3)]
    assert statuses == [200, 200, 200]
    refused = await client.get(ME, headers=account.headers)
    assert refused.status_code == 429
    assert refused.json()["type"] == "urn:taskpipe:problem:rate-limited"
    assert refused.headers["RateLimit-Remaining"] == "0"
    # Three per minute: the next one is allowed once a third of a minute has passed.
    assert 1 <= int(refused.headers["Retry-After"]) <= 20
    assert refused.headers["Retry-After"] == refused.headers["RateLimit-Reset"]


async def test_one_users_flood_never_limits_another(
    client: httpx.AsyncClient, configure: Any
) -> None:
    configure(user_rate_limit=2)
    flooder, bystander = await register(client), await register(client)
    for _ in range(5):
        await client.get(ME, headers=flooder.headers)
    assert (await client.get(ME, headers=flooder.headers)).status_code == 429
    calm = await client.get(ME, headers=bystander.headers)
    assert calm.status_code == 200
    assert calm.headers["RateLimit-Remaining"] == "1"


async def test_the_limit_and_the_revocation_check_are_one_redis_call(
    client: httpx.AsyncClient, test_resources: Resources, monkeypatch: pytest.MonkeyPatch
) -> None:
    account = await register(client)
    commands: list[Any] = []
    original = test_resources.security_redis.execute_command

    async def counting(*args: Any, **options: Any) -> Any:
        commands.append(args[0])
        return await original(*args, **options)

    monkeypatch.setattr(test_resources.security_redis, "execute_command", counting)
    assert (await client.get(ME, headers=account.headers)).status_code == 200
    assert commands == ["EVALSHA"]


async def test_refresh_is_limited_per_session(client: httpx.AsyncClient, configure: Any) -> None:
    configure(refresh_rate_limit=2)
    account = await register(client)
    other_session = await register(client)
    token = await refreshed(client, account.refresh_token, times=2)
    refused = await client.post(REFRESH, json={"refresh_token": token})
    assert refused.status_code == 429
    assert "Retry-After" in refused.headers
    fine = await client.post(REFRESH, json={"refresh_token": other_session.refresh_token})
    assert fine.status_code == 200


# Canonical cache keys and the entry cap ------------------------------------------------------


async def _list(client: httpx.AsyncClient, account: Account, **params: Any) -> httpx.Response:
    response = await client.get(TASKS, params=params, headers=account.headers)
    assert response.status_code == 200, response.text
    return response


async def test_case_and_spacing_variants_of_a_search_share_one_cache_entry(
    client: httpx.AsyncClient,
) -> None:
    account = await register(client)
    await create_task(client, account, title="Quarterly Report")
    misses, hits = cache_requests("tasks", "miss"), cache_requests("tasks", "hit")
    bodies = {(await _list(client, account, q=q)).content for q in ("Report", " report ", "REPORT")}
    assert len(bodies) == 1
    assert cache_requests("tasks", "miss") - misses == 1
    assert cache_requests("tasks", "hit") - hits == 2


async def test_non_ascii_searches_are_left_to_postgresql_to_fold(
    client: httpx.AsyncClient,
) -> None:
    account = await register(client)
    await create_task(client, account, title="Ölwechsel am Auto")
    for q in ("ÖLWECHSEL", "ölwechsel"):
        assert (await _list(client, account, q=q)).json()["total"] == 1


@pytest.mark.parametrize("q", ["ab", " a ", "é"])
async def test_a_search_needs_three_characters(client: httpx.AsyncClient, q: str) -> None:
    account = await register(client)
    response = await client.get(TASKS, params={"q": q}, headers=account.headers)
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "q"


async def test_time_bounds_off_the_whole_minute_are_served_but_not_cached(
    client: httpx.AsyncClient,
) -> None:
    account = await register(client)
    misses = cache_requests("tasks", "miss")
    for second in range(3):
        await _list(client, account, due_from=f"2030-01-01T10:00:{second:02d}.5Z")
    assert cache_requests("tasks", "miss") == misses  # never looked up, never stored
    for _ in range(2):
        await _list(client, account, due_from="2030-01-01T10:00:00Z")
    assert cache_requests("tasks", "miss") - misses == 1


async def test_one_instant_in_two_offsets_is_one_cache_entry(client: httpx.AsyncClient) -> None:
    account = await register(client)
    misses = cache_requests("tasks", "miss")
    for bound in ("2030-01-01T10:00:00Z", "2030-01-01T11:00:00+01:00", "2030-01-01T05:00:00-05:00"):
        await _list(client, account, due_from=bound)
    assert cache_requests("tasks", "miss") - misses == 1


async def test_an_answer_over_the_entry_cap_is_served_but_not_stored(
    resources: Resources,
) -> None:
    cache = ResponseCache(resources.redis, ttl_seconds=60, max_entry_bytes=100)
    user = uuid.uuid4()
    built: list[int] = []

    async def build(size: int) -> bytes:
        built.append(size)
        return b"x" * size

    for _ in range(2):
        assert await cache.get_or_build(user, "tasks", "big", lambda: build(101)) == b"x" * 101
        assert await cache.get_or_build(user, "tasks", "small", lambda: build(100)) == b"x" * 100
    assert built == [101, 100, 101]


# The security store -------------------------------------------------------------------------


@pytest.fixture
def security_server() -> Iterator[RedisServer]:
    server = RedisServer().start()
    yield server
    server.stop()


@pytest.fixture
async def separate_store(
    app: FastAPI, test_resources: Resources, security_server: RedisServer
) -> AsyncIterator[Redis]:
    """The app with its limits, lockouts and revocations on a Redis of their own."""
    resources = with_security_store(test_resources, security_server.url)
    app.state.resources = resources
    yield resources.security_redis
    await resources.security_redis.aclose()


async def test_limits_lockouts_and_revocations_live_on_the_security_store(
    client: httpx.AsyncClient, separate_store: Redis, resources: Resources
) -> None:
    account = await register(client)
    await client.post("/api/v1/auth/login", json={"email": account.email, "password": "Wrong-1a"})
    await client.get(ME, headers=account.headers)
    await client.post("/api/v1/auth/logout", headers=account.headers)
    keys = sorted(key.decode().split(":")[0] for key in await separate_store.keys("*"))
    assert keys == ["login_failures", "revoked", "rl", "rl", "rl"]  # user, register, login
    for pattern in ("rl:*", "revoked:*", "login_failures:*", "lockout:*"):
        assert [key async for key in resources.redis.scan_iter(match=pattern)] == []


async def test_login_fails_closed_when_the_security_store_dies(
    client: httpx.AsyncClient, separate_store: Redis, security_server: RedisServer
) -> None:
    account = await register(client)
    security_server.stop()
    login = await client.post(
        "/api/v1/auth/login", json={"email": account.email, "password": account.password}
    )
    assert login.status_code == 503
    assert login.headers["Retry-After"] == "5"
    # Reads degrade open (the default): the token's signature and expiry still hold.
    me = await client.get(ME, headers=account.headers)
    assert me.status_code == 200


async def test_a_limit_above_one_request_a_millisecond_still_counts(
    client: httpx.AsyncClient, configure: Any
) -> None:
    """The benchmark lifts the limit this high; the check must not fail (and degrade open)."""
    configure(user_rate_limit=10**9)
    account = await register(client)
    for _ in range(3):
        response = await client.get(ME, headers=account.headers)
        assert response.headers["RateLimit-Limit"] == str(10**9)
