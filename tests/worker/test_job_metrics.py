"""Job outcomes by task and heartbeats, counted by a real worker and shown by /metrics."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
from redis.asyncio import Redis

from common import jobstats
from common.jobs import JobName, Queue
from tests.support.factories import register
from tests.support.smtp import MailCatcher
from tests.support.worker import WorkerProcess
from worker.app import app as celery_app
from worker.heartbeat import touch

pytestmark = pytest.mark.worker


async def _counted(redis: Redis, family: str, task: str, at_least: int, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    count = 0
    while time.monotonic() < deadline:
        count = int(await redis.hget(jobstats.PREFIX + family, task) or 0)
        if count >= at_least:
            break
        await asyncio.sleep(0.2)
    return count


async def test_retries_and_successes_are_counted_by_task(
    live_client: httpx.AsyncClient,
    mailbox: MailCatcher,
    celery_worker: WorkerProcess,
    broker: Redis,
) -> None:
    mailbox.fail_next = 1  # SMTP refuses once: one retry, then the mail goes out
    account = await register(live_client)
    await asyncio.to_thread(mailbox.wait_for, account.email, 1, 45.0)
    task = JobName.SEND_VERIFICATION_EMAIL
    assert await _counted(broker, "jobs_succeeded", task, 1, 10) == 1
    assert await _counted(broker, "jobs_retried", task, 1, 10) == 1
    text = (await live_client.get("/metrics")).text
    assert f'taskpipe_jobs_succeeded_total{{task="{task}"}} 1.0' in text
    assert f'taskpipe_jobs_retried_total{{task="{task}"}} 1.0' in text


async def test_a_job_that_fails_for_good_is_counted(
    celery_worker: WorkerProcess, broker: Redis
) -> None:
    task = JobName.SEND_VERIFICATION_EMAIL
    celery_app.send_task(task, kwargs={"token_id": "not-a-uuid"}, queue=Queue.EMAIL)
    assert await _counted(broker, "jobs_failed", task, 1, 20) == 1
    assert await broker.hget(jobstats.PREFIX + "jobs_succeeded", task) is None


async def test_a_heartbeat_is_left_in_redis_for_metrics(database: str, broker: Redis) -> None:
    """What the worker's timer and beat's tick call: the file for the probe, Redis for /metrics."""
    touch("beat")
    at = float(await broker.hget(jobstats.HEARTBEATS, "beat") or 0)
    assert abs(time.time() - at) < 5
