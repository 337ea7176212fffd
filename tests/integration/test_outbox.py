"""A broker outage never loses a job: it waits in the outbox until the relay sends it."""

from __future__ import annotations

import dataclasses
import time
from datetime import timedelta

import httpx
from fastapi import FastAPI
from redis.asyncio import Redis
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from api.resources import Resources
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
    assert await broker.llen("email") == 0

    # Too young for the relay (the request that wrote it might still be publishing it).
    assert await relay_outbox(test_resources.session_factory, test_resources.publisher) == 0
    sent = await relay_outbox(
        test_resources.session_factory, test_resources.publisher, grace=timedelta(0)
    )
    assert sent == 1
    assert await broker.llen("email") == 1
    assert (await session.execute(select(OutboxJob))).scalars().all() == []


async def test_a_rolled_back_request_sends_no_job(
    client: httpx.AsyncClient, session: AsyncSession, broker: Redis
) -> None:
    email = unique_email()
    body = {"email": email, "password": PASSWORD, "full_name": "Once"}
    assert (await client.post("/api/v1/auth/register", json=body)).status_code == 201
    assert await broker.llen("email") == 1
    assert (await client.post("/api/v1/auth/register", json=body)).status_code == 409
    assert await broker.llen("email") == 1
    assert (await session.execute(select(OutboxJob))).scalars().all() == []
