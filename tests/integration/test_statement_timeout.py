"""A statement that runs too long is cancelled by PostgreSQL and answers 503, never a hung request.

The slow statement here is a real one: a PATCH whose UPDATE waits for a row lock that another
connection holds. Without the timeout the request (and its pooled connection) waits for as long
as the lock is held.
"""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError, ProgrammingError

from api.resources import Resources
from common.config import Settings
from common.db.session import create_engine
from common.logging import configure_logging, get_logger
from tests.support.factories import register
from tests.support.tasks import TASKS, create_task

TIMEOUT_MS = 300


@pytest.fixture
async def impatient_client(
    app: FastAPI, settings: Settings, committed_data: None
) -> AsyncIterator[httpx.AsyncClient]:
    resources = Resources.create(
        settings.model_copy(update={"db_statement_timeout_ms": TIMEOUT_MS})
    )
    app.state.resources = resources
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield http
    finally:
        app.state.resources = None
        await resources.close()


async def test_a_statement_past_the_timeout_answers_503_with_retry_after(
    impatient_client: httpx.AsyncClient, resources: Resources
) -> None:
    account = await register(impatient_client)
    task = await create_task(impatient_client, account, title="Locked elsewhere")
    async with resources.engine.connect() as holder:
        await holder.execute(
            text("SELECT id FROM tasks WHERE id = :id FOR UPDATE"), {"id": task["id"]}
        )
        response = await asyncio.wait_for(
            impatient_client.patch(
                f"{TASKS}/{task['id']}",
                json={"title": "Changed"},
                headers={**account.headers, "If-Match": "*"},
            ),
            timeout=10,
        )
        await holder.rollback()
    assert response.status_code == 503, response.text
    assert response.headers["Retry-After"] == "2"
    assert response.json()["type"] == "urn:taskpipe:problem:service-unavailable"
    # The connection went back to the pool in a usable state.
    again = await impatient_client.get(f"{TASKS}/{task['id']}", headers=account.headers)
    assert again.status_code == 200
    assert again.json()["title"] == "Locked elsewhere"


async def test_only_api_connections_carry_the_timeout(settings: Settings) -> None:
    """The worker's engine (long maintenance jobs) is built without one."""
    api = Resources.create(settings.model_copy(update={"db_statement_timeout_ms": 1500}))
    worker_engine = create_engine(settings, pool_size=1)
    try:
        async with api.engine.connect() as connection:
            assert await connection.scalar(text("SHOW statement_timeout")) == "1500ms"
        async with worker_engine.connect() as connection:
            assert await connection.scalar(text("SHOW statement_timeout")) == "0"
    finally:
        await api.close()
        await worker_engine.dispose()


async def test_bound_values_never_reach_an_error_message(resources: Resources) -> None:
    """`hide_parameters`: a failing statement's message names the statement, not its values
    (a password hash, an address, a title), so they reach no log line."""
    secret = "do-not-log-this@example.com"
    async with resources.engine.connect() as connection:
        with pytest.raises(ProgrammingError) as raised:
            await connection.execute(
                text("SELECT CAST(:value AS text) FROM no_such_table"), {"value": secret}
            )
    assert secret not in str(raised.value)
    assert "hidden due to hide_parameters" in str(raised.value)


async def test_the_servers_detail_of_a_failed_statement_reaches_no_log_line(
    resources: Resources,
) -> None:
    """PostgreSQL's DETAIL repeats the row's values ("Key (email)=(...) already exists"), and
    asyncpg puts it in the error's text: logged with the exception, it would print them."""
    secret = "do-not-log-this-either@example.com"
    async with resources.engine.connect() as connection:
        await connection.execute(text("CREATE TEMP TABLE seen (email text UNIQUE)"))
        await connection.execute(text("INSERT INTO seen VALUES (:email)"), {"email": secret})
        with pytest.raises(IntegrityError) as raised:
            await connection.execute(text("INSERT INTO seen VALUES (:email)"), {"email": secret})
    lines = io.StringIO()
    configure_logging(json=True, stream=lines)
    try:
        log = get_logger("test")
        try:
            raise raised.value
        except IntegrityError as exc:
            log.exception("unhandled_error")
            log.error("job_failed", error=repr(exc), message=str(exc.orig))
    finally:
        configure_logging()
    logged = lines.getvalue()
    assert "unique constraint" in logged  # the error itself is still there
    assert secret not in logged, logged
    # What it takes to find the cause, as fields a query can match:
    with_exception = json.loads(logged.splitlines()[0])
    assert (with_exception["sqlstate"], with_exception["constraint"]) == ("23505", "seen_email_key")
