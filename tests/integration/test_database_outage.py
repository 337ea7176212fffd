"""PostgreSQL dropping the API's connections (a restart, a failover).

The pool does not ping connections before use (one round trip fewer on every request), so the
request that meets a dead connection fails; it must fail as a 503 the client may retry, never a
500, and the pool must replace its stale connections at once, so the retry succeeds.
"""

from __future__ import annotations

import dataclasses
import os

import asyncpg
import httpx
from fastapi import FastAPI

from api.resources import Resources
from common.db.session import autocommit_reads, create_engine
from tests.support.factories import register
from tests.support.tasks import TASKS, create_task

UNCACHED_LIST = f"{TASKS}?overdue=false"  # clock-dependent pages are never cached


async def _drop_every_other_connection() -> int:
    url = os.environ["TASKPIPE_DATABASE_URL"].replace("postgresql+asyncpg://", "postgresql://")
    admin = await asyncpg.connect(url)
    try:
        dropped: int = await admin.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    finally:
        await admin.close()
    return dropped


async def test_dropped_connections_give_a_retryable_503_then_recover(
    live_client: httpx.AsyncClient,
) -> None:
    account = await register(live_client)
    task = await create_task(live_client, account)
    assert (await live_client.get(UNCACHED_LIST, headers=account.headers)).status_code == 200

    assert await _drop_every_other_connection() >= 1

    failed = await live_client.get(UNCACHED_LIST, headers=account.headers)
    assert failed.status_code == 503, failed.text
    assert failed.headers["Retry-After"] == "1"
    assert failed.headers["Content-Type"] == "application/problem+json"
    assert failed.json()["type"].endswith("service-unavailable")

    retried = await live_client.get(UNCACHED_LIST, headers=account.headers)
    assert retried.status_code == 200
    assert [item["id"] for item in retried.json()["items"]] == [task["id"]]
    edited = await live_client.patch(
        f"{TASKS}/{task['id']}", json={"version": 1, "title": "After"}, headers=account.headers
    )
    assert edited.status_code == 200, edited.text


async def test_a_database_that_refuses_connections_gives_503_not_500(
    app: FastAPI, test_resources: Resources
) -> None:
    """PostgreSQL restarting refuses connections for a while: retryable, not a bug."""
    account_client = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver"
    )
    app.state.resources = test_resources
    async with account_client:
        account = await register(account_client)
        closed_port = test_resources.settings.model_copy(
            update={"database_url": "postgresql+asyncpg://postgres@127.0.0.1:1/taskpipe"}
        )
        unreachable = create_engine(closed_port)
        app.state.resources = dataclasses.replace(
            test_resources, reads=autocommit_reads(unreachable)
        )
        try:
            response = await account_client.get(UNCACHED_LIST, headers=account.headers)
        finally:
            await unreachable.dispose()
            app.state.resources = None
    assert response.status_code == 503, response.text
    assert response.headers["Retry-After"] == "1"
    assert response.json()["type"].endswith("service-unavailable")
