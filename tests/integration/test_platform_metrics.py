"""/metrics reports what no single process owns, read at scrape time: queue depths on the
broker, the outbox backlog in PostgreSQL, the workers' heartbeats and job outcomes in Redis,
and each API process's database pool use. A store that does not answer costs its samples only."""

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


async def test_the_outbox_backlog_and_the_age_of_its_oldest_job(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    samples = await _samples(client)
    assert samples["taskpipe_outbox_pending_jobs"] == [({}, 0.0)]
    assert samples["taskpipe_outbox_oldest_job_age_seconds"] == [({}, 0.0)]
    for minutes in (10, 1):
        session.add(
            OutboxJob(
                id=uuid.uuid4(),
                task_name="taskpipe.email.send_verification",
                queue="email",
                kwargs={},
                created_at=datetime.now(UTC) - timedelta(minutes=minutes),
            )
        )
    await session.flush()
    samples = await _samples(client)
    assert samples["taskpipe_outbox_pending_jobs"] == [({}, 2.0)]
    ((_, age),) = samples["taskpipe_outbox_oldest_job_age_seconds"]
    assert 600 <= age < 660


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
    assert "taskpipe_outbox_pending_jobs" not in samples
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
