"""/metrics reports what no single process owns, read at scrape time: queue depths on the
broker, the outbox's overdue and parked jobs in PostgreSQL, the workers' heartbeats and job
outcomes in Redis, and each API process's database pool use. A store that does not answer
costs its samples only."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime, timedelta

import httpx
from fastapi import FastAPI
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from api.metrics import observe_pool
from api.resources import Resources
from common import jobstats
from common.db.outbox import MAX_PUBLISHES
from common.db.session import create_engine
from common.models import OutboxJob
from common.redis import create_redis


async def _samples(client: httpx.AsyncClient) -> dict[str, list[tuple[dict[str, str], float]]]:
    response = await client.get("/metrics")
    assert response.status_code == 200
    found: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            found.setdefault(sample.name, []).append((sample.labels, sample.value))
    return found


async def test_queue_depths_and_unacknowledged_jobs_come_from_the_broker(
    client: httpx.AsyncClient, broker: Redis
) -> None:
    await broker.rpush("email", b"job-1", b"job-2")
    await broker.rpush("cache", b"job-3")
    await broker.hset("unacked", "tag-1", b"job-4")
    samples = await _samples(client)
    depths = {labels["queue"]: value for labels, value in samples["taskpipe_queue_depth"]}
    assert depths == {"email": 2, "maintenance": 0, "cache": 1, "webhooks": 0}
    assert samples["taskpipe_queue_unacknowledged_jobs"] == [({}, 1.0)]


async def test_the_outbox_reports_overdue_and_parked_jobs_not_jobs_in_flight(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    """Rows live until their job finished: their number is the jobs in flight, and a long
    retry makes an old row, neither of them wrong. What needs an operator: a job due for the
    relay well past its time (the relay, beat or the broker fails) and a parked one."""
    samples = await _samples(client)
    for name in ("unfinished", "overdue", "parked"):
        assert samples[f"taskpipe_outbox_{name}_jobs"] == [({}, 0.0)]
    assert samples["taskpipe_outbox_oldest_overdue_job_seconds"] == [({}, 0.0)]
    now = datetime.now(UTC)
    rows = {
        "queued, published a minute ago": (now + timedelta(minutes=9), 1),
        "a retry waiting for 10 min, created 40 min ago": (now + timedelta(minutes=10), 3),
        "due 20 s ago: the relay's next round takes it": (now - timedelta(seconds=20), 1),
        "due 5 min ago, never published again: overdue": (now - timedelta(minutes=5), 1),
        "due 2 min ago, never published again: overdue": (now - timedelta(minutes=2), 0),
        "parked an hour ago": (now - timedelta(hours=1), MAX_PUBLISHES),
    }
    for due_at, publish_count in rows.values():
        session.add(
            OutboxJob(
                id=uuid.uuid4(),
                task_name="taskpipe.email.send_verification",
                queue="email",
                kwargs={},
                due_at=due_at,
                publish_count=publish_count,
                created_at=now - timedelta(minutes=40),
            )
        )
    await session.flush()
    samples = await _samples(client)
    assert samples["taskpipe_outbox_unfinished_jobs"] == [({}, 6.0)]
    assert samples["taskpipe_outbox_overdue_jobs"] == [({}, 2.0)]
    assert samples["taskpipe_outbox_parked_jobs"] == [({}, 1.0)]
    ((_, overdue_for),) = samples["taskpipe_outbox_oldest_overdue_job_seconds"]
    assert 240 <= overdue_for < 360  # PostgreSQL's now() is the test transaction's start


async def test_heartbeats_and_job_outcomes_recorded_by_workers_are_shown(
    client: httpx.AsyncClient, test_resources: Resources
) -> None:
    stats = jobstats.SyncStats(test_resources.settings.redis_url)
    stats.heartbeat("beat")
    stats.add("jobs_succeeded", "taskpipe.reminders.scan")
    stats.add("jobs_succeeded", "taskpipe.reminders.scan")
    stats.add("jobs_failed", "taskpipe.email.send_verification")
    stats.add("jobs_retried", "taskpipe.email.send_verification")
    samples = await _samples(client)
    ((labels, at),) = samples["taskpipe_heartbeat_timestamp_seconds"]
    assert labels == {"component": "beat"}
    assert abs(at - datetime.now(UTC).timestamp()) < 60
    task = {"task": "taskpipe.reminders.scan"}
    assert samples["taskpipe_jobs_succeeded_total"] == [(task, 2.0)]
    mail = {"task": "taskpipe.email.send_verification"}
    assert samples["taskpipe_jobs_failed_total"] == [(mail, 1.0)]
    assert samples["taskpipe_jobs_retried_total"] == [(mail, 1.0)]


async def test_an_unreachable_broker_or_database_costs_only_their_samples(
    app: FastAPI, test_resources: Resources
) -> None:
    dead = test_resources.settings.model_copy(
        update={"database_url": "postgresql+asyncpg://postgres@127.0.0.1:1/none"}
    )
    engine = create_engine(dead)
    app.state.resources = dataclasses.replace(
        test_resources,
        broker=create_redis(dead, "redis://127.0.0.1:1/0"),
        reads=engine.connect,
    )
    before = REGISTRY.get_sample_value(
        "taskpipe_redis_failures_total", {"operation": "queue_depth"}
    )
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        samples = await _samples(c)
    await engine.dispose()
    assert "taskpipe_queue_depth" not in samples
    assert "taskpipe_outbox_overdue_jobs" not in samples
    assert "taskpipe_http_requests_total" in samples
    after = REGISTRY.get_sample_value("taskpipe_redis_failures_total", {"operation": "queue_depth"})
    assert (after or 0) == (before or 0) + 1


async def test_pool_use_counts_checked_out_connections(resources: Resources) -> None:
    engine = create_engine(resources.settings)
    observe_pool(engine, 7)
    in_use = REGISTRY.get_sample_value("taskpipe_db_pool_connections_in_use") or 0.0
    async with engine.connect() as connection:
        await connection.execute(text("SELECT 1"))
        assert REGISTRY.get_sample_value("taskpipe_db_pool_connections_in_use") == in_use + 1
    assert REGISTRY.get_sample_value("taskpipe_db_pool_connections_in_use") == in_use
    assert REGISTRY.get_sample_value("taskpipe_db_pool_connections_max") == 7
    await engine.dispose()
