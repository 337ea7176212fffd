"""The worker's broker (a Redis server of the test's own) dies while the worker holds a job:
the worker stays up, reconnects when the broker is back, and goes on working.

Its own module, so no other worker consumes meanwhile.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from api.resources import Resources
from common.jobs import Job, JobPublisher, create_producer
from common.models import OutboxJob
from tests.support.factories import register
from tests.support.redis_server import RedisServer
from tests.support.smtp import MailCatcher
from tests.support.worker import WorkerProcess

pytestmark = pytest.mark.worker


async def _publish_newest_job(resources: Resources, publisher: JobPublisher) -> None:
    """Hand the newest outbox job (the last registration's mail) to the test's broker."""
    async with resources.session_factory() as session:
        row = (
            (await session.execute(select(OutboxJob).order_by(OutboxJob.created_at.desc())))
            .scalars()
            .first()
        )
    assert row is not None
    publisher.publish(Job(task_name=row.task_name, queue=row.queue, kwargs=row.kwargs, id=row.id))


async def test_a_worker_holding_a_job_survives_the_broker_dying_and_works_on(
    live_client: httpx.AsyncClient, mailbox: MailCatcher, resources: Resources, tmp_path: Path
) -> None:
    """Celery 5.7 closes the broken broker connection twice (collect(), then close()); the
    second close reopens a pool on a transport already detached and raises AttributeError,
    when the worker holds unacknowledged messages. The worker then stopped for good
    ("Unrecoverable error"), and with it every job until someone restarted it."""
    broker = RedisServer().start()
    publisher = JobPublisher(
        create_producer(resources.settings.model_copy(update={"broker_url": broker.url}))
    )
    worker = WorkerProcess(
        {"TASKPIPE_BROKER_URL": broker.url}, tmp_path / "worker.log", pool="prefork", concurrency=2
    )
    worker.start()
    try:
        mailbox.delay_seconds = 3.0  # the job is inside SMTP's DATA when the broker dies
        await register(live_client)
        await _publish_newest_job(resources, publisher)
        deadline = time.monotonic() + 20
        while mailbox.deliveries_started == 0 and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        broker.stop()
        await asyncio.sleep(2)
        assert worker.process is not None and worker.process.poll() is None, worker.log_text()
        broker.start()  # empty: no persistence
        mailbox.delay_seconds = 0
        after = await register(live_client)
        await _publish_newest_job(resources, publisher)
        await asyncio.to_thread(mailbox.wait_for, after.email, 1, 30.0)
    finally:
        worker.stop()
        broker.stop()
    assert "Unrecoverable error" not in worker.log_text()
