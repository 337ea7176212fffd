"""Idempotency keys are recorded in PostgreSQL, in the create's own transaction.

Redis is only a fast path: losing it (a restart without persistence, an outage), or the
process dying right after the commit, can no longer let a retry create a second task.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx
import pytest
from redis.asyncio import Redis
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from api.idempotency import IdempotencyStore
from api.resources import Resources
from common.maintenance.purge import purge_expired_rows
from common.models import IdempotencyKey, Task
from tests.support.factories import Account, register
from tests.support.tasks import TASKS, future


def _keyed(account: Account, key: str) -> dict[str, str]:
    return {**account.headers, "Idempotency-Key": key}


async def _task_count(session: AsyncSession, account: Account) -> int:
    count: int = (
        await session.execute(
            select(func.count()).select_from(Task).where(Task.user_id == account.user["id"])
        )
    ).scalar_one()
    return count


async def test_a_retry_after_redis_lost_every_key_replays_instead_of_creating_again(
    client: httpx.AsyncClient, session: AsyncSession, broker: Redis
) -> None:
    account = await register(client)
    body = {"title": "Pay the rent", "due_date": future()}
    first = await client.post(TASKS, json=body, headers=_keyed(account, "rent-1"))
    assert first.status_code == 201
    await broker.flushdb()  # Redis restarted: it keeps nothing on disk
    again = await client.post(TASKS, json=body, headers=_keyed(account, "rent-1"))
    assert again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert await _task_count(session, account) == 1


async def test_a_crash_right_after_the_commit_cannot_duplicate(
    client: httpx.AsyncClient, session: AsyncSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nothing after the commit happens (here: storing the fast-path copy in Redis fails);
    the client's retry gets the first response from PostgreSQL, not a second task."""
    account = await register(client)

    async def die(*_: object) -> None:
        raise RuntimeError("process killed right after the commit")

    monkeypatch.setattr(IdempotencyStore, "_cache", die)
    first = await client.post(TASKS, json={"title": "Once only"}, headers=_keyed(account, "k-1"))
    assert first.status_code == 201  # committed: a failure after it is logged, not answered
    monkeypatch.undo()
    retried = await client.post(TASKS, json={"title": "Once only"}, headers=_keyed(account, "k-1"))
    assert retried.status_code == 201
    assert retried.headers["Idempotent-Replayed"] == "true"
    assert await _task_count(session, account) == 1


async def test_the_replay_is_the_complete_first_response(
    client: httpx.AsyncClient, broker: Redis
) -> None:
    account = await register(client)
    first = await client.post(TASKS, json={"title": "Complete"}, headers=_keyed(account, "c-1"))
    for _ in ("from Redis", "from PostgreSQL"):
        again = await client.post(TASKS, json={"title": "Complete"}, headers=_keyed(account, "c-1"))
        assert again.status_code == 201
        assert again.content == first.content
        for header in ("Location", "ETag", "Content-Type", "Cache-Control"):
            assert again.headers[header] == first.headers[header], header
        await broker.flushdb()


async def test_another_body_with_the_key_is_422_even_without_redis(
    client: httpx.AsyncClient, broker: Redis
) -> None:
    account = await register(client)
    assert (
        await client.post(TASKS, json={"title": "First"}, headers=_keyed(account, "o-1"))
    ).status_code == 201
    await broker.flushdb()
    response = await client.post(TASKS, json={"title": "Other"}, headers=_keyed(account, "o-1"))
    assert response.status_code == 422
    assert response.json()["type"] == "urn:taskpipe:problem:idempotency-key-reused"


async def test_a_duplicate_sent_while_the_first_runs_is_409(
    live_client: httpx.AsyncClient, resources: Resources
) -> None:
    """The first request holds a transaction lock on (user, key) until it commits; here a
    second connection holds it, exactly as a request still running would."""
    account = await register(live_client)
    digest = hashlib.sha256(b"in-flight").hexdigest()
    url = os.environ["TASKPIPE_DATABASE_URL"].replace("postgresql+asyncpg://", "postgresql://")
    holder = await asyncpg.connect(url)
    try:
        async with holder.transaction():
            await holder.execute(
                "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
                f"{account.user['id']}:{digest}",
            )
            busy = await live_client.post(
                TASKS, json={"title": "Racing"}, headers=_keyed(account, "in-flight")
            )
        assert busy.status_code == 409
        assert busy.headers["Retry-After"] == "1"
        assert busy.json()["type"] == "urn:taskpipe:problem:idempotency-request-in-progress"
        done = await live_client.post(
            TASKS, json={"title": "Racing"}, headers=_keyed(account, "in-flight")
        )
        assert done.status_code == 201
    finally:
        await holder.close()


async def test_a_key_is_kept_24_hours_then_purged_and_free_again(
    client: httpx.AsyncClient,
    session: AsyncSession,
    test_resources: Resources,
    broker: Redis,
) -> None:
    account = await register(client)
    assert (
        await client.post(TASKS, json={"title": "Old"}, headers=_keyed(account, "day-1"))
    ).status_code == 201
    await session.execute(
        update(IdempotencyKey).values(created_at=func.now() - timedelta(hours=25))
    )
    await session.commit()
    await broker.flushdb()  # its fast-path copy expired with it
    reused = await client.post(TASKS, json={"title": "New"}, headers=_keyed(account, "day-1"))
    assert reused.status_code == 201  # expired: the key starts afresh
    assert "Idempotent-Replayed" not in reused.headers
    await session.execute(
        update(IdempotencyKey).values(created_at=func.now() - timedelta(hours=25))
    )
    await session.commit()
    report = await purge_expired_rows(
        test_resources.unit_of_work,
        now=datetime.now(UTC),
        retention=timedelta(days=30),
        batch_size=10,
    )
    assert report["idempotency_keys"] == 1
    assert (await session.execute(select(IdempotencyKey))).scalars().all() == []


async def test_the_record_keeps_no_raw_key(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    account = await register(client)
    key = f"secret-order-{uuid.uuid4()}"
    await client.post(TASKS, json={"title": "Hashed"}, headers=_keyed(account, key))
    (row,) = (await session.execute(select(IdempotencyKey))).scalars().all()
    assert row.key_digest == hashlib.sha256(key.encode()).hexdigest()
