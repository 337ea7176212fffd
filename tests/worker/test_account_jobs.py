"""Account jobs through a real Celery worker (and a real SMTP server for the mails)."""

from __future__ import annotations

import asyncio
import time
import uuid

import httpx
import pytest
from fastapi import FastAPI
from redis.asyncio import Redis

from api.resources import Resources
from common.auth.revocation import revoked_key
from tests.support.accounts import bearer
from tests.support.factories import PASSWORD, login, register
from tests.support.outage import without_security_redis
from tests.support.worker import WorkerProcess

pytestmark = pytest.mark.worker

ME = "/api/v1/users/me"
SESSIONS = "/api/v1/users/me/sessions"


async def _eventually(check, timeout: float = 20.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.1)


async def test_a_session_ended_while_the_security_store_was_down_stays_ended_after(
    app: FastAPI,
    live_client: httpx.AsyncClient,
    resources: Resources,
    broker: Redis,
    celery_worker: WorkerProcess,
) -> None:
    """The API cannot write the revocation mark; the job enqueued with the change writes it
    once the store answers, so the ended session does not come back with Redis."""
    account = await register(live_client)
    other = (await login(live_client, account.email, PASSWORD)).json()
    sessions = (await live_client.get(SESSIONS, headers=account.headers)).json()["items"]
    (ended,) = [uuid.UUID(s["id"]) for s in sessions if not s["current"]]
    mark = revoked_key(uuid.UUID(account.user["id"]), ended)

    app.state.resources = without_security_redis(resources)
    try:
        assert (await live_client.delete(SESSIONS, headers=account.headers)).status_code == 204
    finally:
        await app.state.resources.security_redis.aclose()
        app.state.resources = resources

    async def marked() -> bool:
        return bool(await broker.exists(mark))

    await _eventually(marked)
    assert (await live_client.get(ME, headers=bearer(other["access_token"]))).status_code == 401
