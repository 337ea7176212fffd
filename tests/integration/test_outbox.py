"""A broker outage or a broker that loses messages never loses a job: the outbox row lives
until the job has finished, and the relay publishes it again when it is due."""

from __future__ import annotations

import dataclasses
import time
import uuid
from datetime import timedelta

import httpx
import orjson
from fastapi import FastAPI
from redis.asyncio import Redis
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from api.resources import Resources
from common.db.outbox import MAX_PUBLISHES
from common.jobs import JobPublisher, create_producer
from common.maintenance.outbox import relay_outbox
from common.models import OutboxJob
from tests.support.factories import PASSWORD, unique_email


async def test_register_succeeds_with_the_broker_down_and_the_relay_sends_the_mail_later(
    app: FastAPI, test_resources: Resources, session: AsyncSession, broker: Redis
) -> None:
    dead_settings = test_resources.settings.model_copy(
        update={"broker_url": "redis://127.0.0.1:1/0"}
    )
    dead_publisher = JobPublisher(create_producer(dead_settings))
    app.state.resources = dataclasses.replace(test_resources, publisher=dead_publisher)
    email = unique_email()
    started = time.monotonic()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        response = await c.post(
            "/api/v1/auth/register",
            json={"email": email, "password": PASSWORD, "full_name": "Outage"},
            headers={"X-Request-ID": "outage-1"},
        )
    assert response.status_code == 201
    assert time.monotonic() - started < 10  # the outage costs a few seconds, not a hang

    (stranded,) = (await session.execute(select(OutboxJob))).scalars().all()
    assert stranded.task_name == "taskpipe.email.send_verification"
    assert stranded.request_id == "outage-1"
    assert stranded.publish_count == 0  # never published: due for the relay at once
    assert await broker.llen("email") == 0

    assert await relay_outbox(test_resources.session_factory, test_resources.publisher) == 1
    assert await broker.llen("email") == 1
    # Published: the row stays until the worker finished the job, due again only much later.
    assert await relay_outbox(test_resources.session_factory, test_resources.publisher) == 0
    await session.refresh(stranded)
    assert stranded.publish_count == 1


async def test_the_relay_publishes_again_a_job_whose_message_was_lost(
    client: httpx.AsyncClient,
    session: AsyncSession,
    broker: Redis,
    test_resources: Resources,
) -> None:
    """Redis runs without persistence: a restart drops every queued message. The outbox row
    outlives its message until the job has finished, so the relay publishes it again once the
    redelivery bound has passed (on the old code the row was deleted at the first publish and
    the job was gone for good)."""
    body = {"email": unique_email(), "password": PASSWORD, "full_name": "Lost"}
    assert (await client.post("/api/v1/auth/register", json=body)).status_code == 201
    assert await broker.llen("email") == 1
    await broker.delete("email")  # the Redis restart

    (row,) = (await session.execute(select(OutboxJob))).scalars().all()
    await session.execute(
        update(OutboxJob).values(due_at=func.now() - timedelta(seconds=1))
    )  # the bound (TASKPIPE_OUTBOX_REDELIVER_SECONDS) has passed
    assert await relay_outbox(test_resources.session_factory, test_resources.publisher) == 1
    (message,) = await broker.lrange("email", 0, -1)
    assert orjson.loads(message)["headers"]["id"] == str(row.id)
    await session.refresh(row)
    assert row.publish_count == 2


async def test_a_job_published_too_often_is_left_for_an_operator(
    session: AsyncSession, broker: Redis, test_resources: Resources
) -> None:
    session.add(
        OutboxJob(
            id=uuid.uuid4(),
            task_name="taskpipe.email.send_verification",
            queue="email",
            kwargs={"token_id": str(uuid.uuid4())},
            publish_count=MAX_PUBLISHES,
            due_at=func.now() - timedelta(hours=1),
        )
    )
    await session.flush()
    assert await relay_outbox(test_resources.session_factory, test_resources.publisher) == 0
    assert await broker.llen("email") == 0


async def test_a_rolled_back_request_sends_no_job(
    client: httpx.AsyncClient, session: AsyncSession, broker: Redis
) -> None:
    email = unique_email()
    body = {"email": email, "password": PASSWORD, "full_name": "Once"}
    assert (await client.post("/api/v1/auth/register", json=body)).status_code == 201
    assert await broker.llen("email") == 1
    assert (await client.post("/api/v1/auth/register", json=body)).status_code == 409
    assert await broker.llen("email") == 1
    (row,) = (await session.execute(select(OutboxJob))).scalars().all()
    assert row.publish_count == 1  # one job for the one registration that committed
