"""The per-user response cache: hits, invalidation by every kind of write, Redis outages."""

from __future__ import annotations

import dataclasses
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from api.resources import Resources
from common.cache import ResponseCache, generation_key
from tests.support.factories import Account, register
from tests.support.outage import without_redis
from tests.support.tasks import (
    CATEGORIES,
    TASKS,
    assign,
    cache_requests,
    create_category,
    create_task,
    metric,
)


async def _forget_cached_entries(redis: Redis) -> None:
    """Drop every cache entry and generation (the truth then comes from PostgreSQL)."""
    keys = [key async for key in redis.scan_iter(match="cache:*")]
    keys += [key async for key in redis.scan_iter(match="gen:*")]
    if keys:
        await redis.delete(*keys)


@dataclasses.dataclass
class World:
    client: httpx.AsyncClient
    account: Account
    task: dict[str, Any]
    spare: dict[str, Any]
    linked: dict[str, Any]
    category: dict[str, Any]

    async def reads(self) -> dict[str, tuple[int, object]]:
        urls = {
            "list": TASKS,
            "page of two": f"{TASKS}?limit=1&page=2",
            "task": f"{TASKS}/{self.task['id']}",
            "categories": CATEGORIES,
        }
        result: dict[str, tuple[int, object]] = {}
        for name, url in urls.items():
            response = await self.client.get(url, headers=self.account.headers)
            if response.status_code == 200:
                result[name] = (200, response.content)  # byte for byte
            else:
                problem = response.json()
                del problem["request_id"]
                result[name] = (response.status_code, problem)
        return result


@pytest.fixture
async def world(client: httpx.AsyncClient) -> World:
    account = await register(client)
    task = await create_task(client, account, title="Cached task")
    spare = await create_task(client, account, title="Spare task")
    linked = await create_category(client, account, "Linked")
    category = await create_category(client, account, "Free")
    await assign(client, account, task["id"], linked["id"])
    return World(client, account, task, spare, linked, category)


async def _current(world: World) -> dict[str, Any]:
    response = await world.client.get(f"{TASKS}/{world.task['id']}", headers=world.account.headers)
    result: dict[str, Any] = response.json()
    return result


Write = Callable[[World], Awaitable[httpx.Response]]


async def _create_task(w: World) -> httpx.Response:
    return await w.client.post(TASKS, json={"title": "Brand new"}, headers=w.account.headers)


async def _patch_task(w: World) -> httpx.Response:
    version = (await _current(w))["version"]
    return await w.client.patch(
        f"{TASKS}/{w.task['id']}",
        json={"version": version, "title": "Patched"},
        headers=w.account.headers,
    )


async def _delete_task(w: World) -> httpx.Response:
    return await w.client.delete(f"{TASKS}/{w.task['id']}", headers=w.account.headers)


async def _delete_other_task(w: World) -> httpx.Response:
    return await w.client.delete(f"{TASKS}/{w.spare['id']}", headers=w.account.headers)


async def _assign(w: World) -> httpx.Response:
    return await w.client.post(
        f"{TASKS}/{w.task['id']}/categories/{w.category['id']}", headers=w.account.headers
    )


async def _remove(w: World) -> httpx.Response:
    return await w.client.delete(
        f"{TASKS}/{w.task['id']}/categories/{w.linked['id']}", headers=w.account.headers
    )


async def _create_category(w: World) -> httpx.Response:
    return await w.client.post(CATEGORIES, json={"name": "Another"}, headers=w.account.headers)


async def _rename_category(w: World) -> httpx.Response:
    return await w.client.patch(
        f"{CATEGORIES}/{w.linked['id']}", json={"name": "Renamed"}, headers=w.account.headers
    )


async def _recolor_category(w: World) -> httpx.Response:
    return await w.client.patch(
        f"{CATEGORIES}/{w.linked['id']}", json={"color": "#123456"}, headers=w.account.headers
    )


async def _delete_category(w: World) -> httpx.Response:
    return await w.client.delete(f"{CATEGORIES}/{w.linked['id']}", headers=w.account.headers)


# write -> the reads whose answer it must change
WRITES: dict[str, tuple[Write, set[str]]] = {
    "create task": (_create_task, {"list", "page of two"}),
    "patch task": (_patch_task, {"list", "page of two", "task"}),
    "delete task": (_delete_task, {"list", "page of two", "task", "categories"}),
    "delete another task": (_delete_other_task, {"list", "page of two"}),
    "assign category": (_assign, {"list", "page of two", "task", "categories"}),
    "remove category": (_remove, {"list", "page of two", "task", "categories"}),
    "create category": (_create_category, {"categories"}),
    "rename category": (_rename_category, {"list", "page of two", "task", "categories"}),
    "recolor category": (_recolor_category, {"list", "page of two", "task", "categories"}),
    "delete category": (_delete_category, {"list", "page of two", "task", "categories"}),
}


@pytest.mark.parametrize("name", WRITES)
async def test_every_kind_of_write_invalidates_the_cached_reads(
    world: World, broker: Redis, name: str
) -> None:
    write, changed = WRITES[name]
    before = await world.reads()
    assert await world.reads() == before  # now served from the cache
    response = await write(world)
    assert response.status_code < 300, response.text
    after = await world.reads()
    await _forget_cached_entries(broker)
    truth = await world.reads()
    assert after == truth  # never a stale answer
    assert {read for read in before if before[read] != truth[read]} == changed


async def test_second_reads_are_cache_hits_and_metrics_show_the_ratio(world: World) -> None:
    urls = {"tasks": TASKS, "task": f"{TASKS}/{world.task['id']}", "categories": CATEGORIES}
    before = {kind: (cache_requests(kind, "hit"), cache_requests(kind, "miss")) for kind in urls}
    for kind, url in urls.items():
        first = await world.client.get(url, headers=world.account.headers)
        second = await world.client.get(url, headers=world.account.headers)
        assert first.content == second.content
        assert first.headers["ETag"] == second.headers["ETag"]
        hits, misses = before[kind]
        assert cache_requests(kind, "miss") == misses + 1, kind
        assert cache_requests(kind, "hit") == hits + 1, kind
    exposition = (await world.client.get("/metrics")).text
    assert 'taskpipe_cache_requests_total{kind="tasks",result="hit"}' in exposition


async def test_equal_queries_share_one_entry(world: World) -> None:
    headers = world.account.headers
    await world.client.get(
        TASKS, params={"status": "pending,completed", "sort": "title"}, headers=headers
    )
    hits = cache_requests("tasks", "hit")
    same = [("status", "completed"), ("status", "pending"), ("sort", "title"), ("unknown", "x")]
    await world.client.get(TASKS, params=same, headers=headers)
    assert cache_requests("tasks", "hit") == hits + 1


async def test_overdue_pages_are_never_cached(world: World) -> None:
    before = cache_requests("tasks", "hit") + cache_requests("tasks", "miss")
    for _ in range(2):
        response = await world.client.get(
            TASKS, params={"overdue": "true"}, headers=world.account.headers
        )
        assert response.status_code == 200
    assert cache_requests("tasks", "hit") + cache_requests("tasks", "miss") == before


async def test_one_users_writes_leave_another_users_cache_alone(
    client: httpx.AsyncClient, world: World
) -> None:
    other = await register(client)
    await create_task(client, other)
    await client.get(TASKS, headers=other.headers)
    await _create_task(world)
    hits = cache_requests("tasks", "hit")
    await client.get(TASKS, headers=other.headers)
    assert cache_requests("tasks", "hit") == hits + 1


async def test_list_pages_honour_if_none_match(world: World) -> None:
    headers = world.account.headers
    first = await world.client.get(TASKS, headers=headers)
    etag = first.headers["ETag"]
    not_modified = await world.client.get(TASKS, headers={**headers, "If-None-Match": etag})
    assert not_modified.status_code == 304
    assert not_modified.content == b""
    await _create_task(world)
    changed = await world.client.get(TASKS, headers={**headers, "If-None-Match": etag})
    assert changed.status_code == 200
    assert changed.headers["ETag"] != etag


# Generations ----------------------------------------------------------------------------


async def test_a_generation_starts_from_the_clock_never_from_zero(
    test_resources: Resources, broker: Redis
) -> None:
    cache = test_resources.cache
    user = uuid.uuid4()

    async def build() -> bytes:
        return b"first"

    assert await cache.get_or_build(user, "tasks", "key", build) == b"first"
    first = int(await broker.get(generation_key(user)))
    assert first > 1_700_000_000 * 10**6  # microseconds since the epoch
    await broker.delete(generation_key(user))  # evicted or expired
    found = await cache.lookup(user, "tasks", "key")
    assert found.body is None  # the old epoch's entry is unreachable
    assert int(await broker.get(generation_key(user))) > first
    await broker.delete(generation_key(user))
    await cache.invalidate(user)  # a bump of a missing generation starts a new epoch too
    assert int(await broker.get(generation_key(user))) > first
    assert await broker.ttl(generation_key(user)) > 0


async def test_a_failed_invalidation_is_retried_before_the_cache_is_trusted_again(
    test_resources: Resources, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = ResponseCache(test_resources.redis, ttl_seconds=60, retry_after_seconds=0)
    user = uuid.uuid4()

    async def stale() -> bytes:
        return b"before the write"

    await cache.get_or_build(user, "tasks", "key", stale)
    assert (await cache.lookup(user, "tasks", "key")).body == b"before the write"

    async def unreachable(*args: Any, **kwargs: Any) -> Any:
        raise RedisConnectionError("blip")

    real_bump = cache._bump
    monkeypatch.setattr(cache, "_bump", unreachable)
    failures = metric("taskpipe_redis_failures_total", operation="cache")
    await cache.invalidate(user)  # the write committed, but the bump failed
    assert metric("taskpipe_redis_failures_total", operation="cache") == failures + 1
    assert (await cache.lookup(user, "tasks", "key")).body is None  # not the stale entry
    monkeypatch.setattr(cache, "_bump", real_bump)
    assert (await cache.lookup(user, "tasks", "key")).body is None  # bumped first, then missed


# Redis down -----------------------------------------------------------------------------


@pytest.fixture
async def redis_down(app: FastAPI, test_resources: Resources) -> AsyncIterator[Resources]:
    """The app with every Redis client pointed at a port where nothing listens."""
    app.state.resources = without_redis(test_resources)
    yield app.state.resources
    await app.state.resources.redis.aclose()
    app.state.resources = test_resources


async def test_reads_and_writes_work_from_postgresql_when_redis_is_down(
    client: httpx.AsyncClient, redis_down: Resources, caplog: pytest.LogCaptureFixture
) -> None:
    account = await register(client)
    headers = account.headers
    redis_failures = metric("taskpipe_redis_failures_total", operation="cache")
    idempotency_failures = metric("taskpipe_redis_failures_total", operation="idempotency")
    errors = cache_requests("tasks", "error")
    with caplog.at_level(logging.WARNING):
        created = await client.post(
            TASKS, json={"title": "Offline task"}, headers={**headers, "Idempotency-Key": "k1"}
        )
        assert created.status_code == 201, created.text
        task = created.json()
        category = await create_category(client, account, "Offline")
        assert (await assign(client, account, task["id"], category["id"]))["version"] == 2
        listed = await client.get(TASKS, headers=headers)
        assert [t["title"] for t in listed.json()["items"]] == ["Offline task"]
        for _ in range(2):
            assert (await client.get(f"{TASKS}/{task['id']}", headers=headers)).status_code == 200
        patched = await client.patch(
            f"{TASKS}/{task['id']}", json={"version": 2, "title": "Still works"}, headers=headers
        )
        assert patched.status_code == 200
        assert (await client.get(CATEGORIES, headers=headers)).json()["items"][0]["task_count"] == 1
        assert (await client.delete(f"{TASKS}/{task['id']}", headers=headers)).status_code == 204
        assert (await client.get(f"{TASKS}/{task['id']}", headers=headers)).status_code == 404
    assert metric("taskpipe_redis_failures_total", operation="cache") > redis_failures
    assert metric("taskpipe_redis_failures_total", operation="idempotency") > idempotency_failures
    assert cache_requests("tasks", "error") > errors
    assert caplog.text.count("cache_unavailable") == 1  # logged once per outage, counted always
