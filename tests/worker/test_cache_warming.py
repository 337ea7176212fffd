"""Warming fills the cache that the next list read hits; it is idempotent and skips the fresh."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from redis.asyncio import Redis

from api.resources import Resources
from common.cache import ResponseCache
from common.db.uow import UnitOfWork
from common.warming import CacheWarmer
from tests.support.factories import PASSWORD, login, register
from tests.support.worker import WorkerProcess


async def _cache_keys(redis: Redis) -> set[bytes]:
    return {key async for key in redis.scan_iter(match="cache:*")}


async def test_warming_twice_builds_once_and_the_next_read_is_a_hit(
    client: httpx.AsyncClient, test_resources: Resources, broker: Redis
) -> None:
    account = await register(client)
    await client.post("/api/v1/tasks", headers=account.headers, json={"title": "Warm me up"})
    user_id = uuid.UUID(account.user["id"])
    cache = ResponseCache(test_resources.redis, ttl_seconds=60)
    async with test_resources.session_factory() as session:
        warmer = CacheWarmer(
            UnitOfWork(session, test_resources.publisher), cache, test_resources.cursors
        )
        assert await warmer.warm(user_id)
        warmed = await _cache_keys(broker)
        assert len(warmed) == 2  # the first task page and the category list
        await warmer.warm(user_id)
        assert await _cache_keys(broker) == warmed  # fresh: nothing rebuilt or added

    before = (await client.get("/metrics")).text
    response = await client.get("/api/v1/tasks", headers=account.headers)
    assert response.status_code == 200
    assert response.json()["items"][0]["title"] == "Warm me up"
    after = (await client.get("/metrics")).text

    def hits(text: str) -> float:
        for line in text.splitlines():
            if line.startswith('taskpipe_cache_requests_total{kind="tasks",result="hit"}'):
                return float(line.split()[-1])
        return 0.0

    assert hits(after) == hits(before) + 1


async def test_an_unknown_user_is_skipped(test_resources: Resources) -> None:
    cache = ResponseCache(test_resources.redis, ttl_seconds=60)
    async with test_resources.session_factory() as session:
        warmer = CacheWarmer(
            UnitOfWork(session, test_resources.publisher), cache, test_resources.cursors
        )
        assert not await warmer.warm(uuid.uuid4())


async def test_recently_active_means_logged_in_within_the_hour(
    client: httpx.AsyncClient, test_resources: Resources
) -> None:
    account = await register(client)
    assert (await login(client, account.email, PASSWORD)).status_code == 200
    async with test_resources.session_factory() as session:
        warmer = CacheWarmer(
            UnitOfWork(session, test_resources.publisher),
            test_resources.cache,
            test_resources.cursors,
        )
        now = datetime.now(UTC)
        active = await warmer.warm_recently_active(now)
        assert uuid.UUID(account.user["id"]) in active
        assert await warmer.warm_recently_active(now + timedelta(hours=2)) == []


@pytest.mark.worker
async def test_login_warms_the_cache_through_the_worker(
    live_client: httpx.AsyncClient, broker: Redis, celery_worker: WorkerProcess
) -> None:
    account = await register(live_client)
    await broker.delete(*[k async for k in broker.scan_iter(match="cache:*")] or ["none"])
    assert (await login(live_client, account.email, PASSWORD)).status_code == 200
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and len(await _cache_keys(broker)) < 2:
        await asyncio.sleep(0.1)
    assert len(await _cache_keys(broker)) == 2
