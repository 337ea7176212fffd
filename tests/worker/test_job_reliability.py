"""Jobs through a real worker when PostgreSQL drops connections, SMTP refuses for a long
while, or the worker dies between SMTP's "250 OK" and the record of the send."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import httpx
import pytest
from redis.asyncio import Redis
from sqlalchemy import select, text

from api.resources import Resources
from common.maintenance.outbox import relay_outbox
from common.models import AccountExport, ExportStatus, OutboxJob, SentEmail
from tests.support.factories import register
from tests.support.postgres import admin_dsn, terminate_backends
from tests.support.rows import verify_address
from tests.support.smtp import MailCatcher
from tests.support.worker import WorkerProcess

pytestmark = pytest.mark.worker


async def _wait(condition, timeout: float = 30.0, step: float = 0.1) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not await condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(step)


async def _outbox(resources: Resources) -> list[OutboxJob]:
    async with resources.session_factory() as session:
        return list((await session.execute(select(OutboxJob))).scalars().all())


async def test_jobs_survive_terminated_database_connections(
    live_client: httpx.AsyncClient, mailbox: MailCatcher, resources: Resources, tmp_path: Path
) -> None:
    """The issue's drill: after pg_terminate_backend, the next job in each worker process met
    a dead pooled connection, failed, was acknowledged and dropped (2 of 22 users never got
    their mail). Now the pool pings first, and a job retries on a dropped connection."""
    worker = WorkerProcess({}, tmp_path / "worker.log", pool="prefork")
    worker.start()
    try:
        warm = await register(live_client)  # both worker processes get pooled connections
        second = await register(live_client)
        await asyncio.to_thread(mailbox.wait_for, warm.email, 1, 30.0)
        await asyncio.to_thread(mailbox.wait_for, second.email, 1, 30.0)
        assert await terminate_backends() >= 1
        # The API's own pooled connection died too: its first request is a retryable 503.
        assert (await live_client.get("/ready")).status_code in (200, 503)
        accounts = [await register(live_client) for _ in range(6)]
        for account in accounts:
            await asyncio.to_thread(mailbox.wait_for, account.email, 1, 30.0)

        async def outbox_empty() -> bool:
            return not await _outbox(resources)

        # Each finished job took its row with it; one that met the dead connection retries
        # with a backoff first (10 s was too short on a busy machine: a CI run failed on it).
        await _wait(outbox_empty)
        assert all(len(mailbox.to(a.email)) == 1 for a in [warm, second, *accounts])
    finally:
        worker.stop()


async def test_a_job_whose_connection_drops_mid_statement_retries_and_finishes(
    live_client: httpx.AsyncClient, mailbox: MailCatcher, resources: Resources, tmp_path: Path
) -> None:
    """Pre-ping cannot save a connection that dies while the job is using it: the export job
    waits on a locked table, its backend is terminated there, and the job must retry (a
    dropped connection is not a bug) and finish, with one mail."""
    account = await register(live_client)
    async with resources.session_factory() as session:
        await verify_address(session, account)
        await session.commit()
    await live_client.post("/api/v1/tasks", json={"title": "Kept"}, headers=account.headers)
    export_id = (
        await live_client.post("/api/v1/users/me/exports", headers=account.headers)
    ).json()["id"]

    async def export_status() -> ExportStatus | None:
        async with resources.session_factory() as session:
            status: ExportStatus | None = await session.scalar(
                select(AccountExport.status).where(AccountExport.id == export_id)
            )
            return status

    async def running() -> bool:
        return await export_status() is ExportStatus.RUNNING

    async def ready() -> bool:
        return await export_status() is ExportStatus.READY

    worker = WorkerProcess({}, tmp_path / "worker.log")
    try:
        async with resources.engine.connect() as locker:
            transaction = await locker.begin()
            await locker.execute(text("LOCK TABLE tasks IN ACCESS EXCLUSIVE MODE"))
            worker.start()
            await _wait(running)
            assert await _terminate_backends_waiting_on_a_lock() == 1
            await transaction.rollback()
        await _wait(ready)
        await asyncio.to_thread(mailbox.wait_for, account.email, 2, 30.0)  # verification too
    finally:
        worker.stop()
    subjects = [m["Subject"] for m in mailbox.to(account.email)]
    assert subjects.count("Your Taskpipe export is ready") == 1, subjects
    assert "job_retry" in worker.log_text()


async def _terminate_backends_waiting_on_a_lock() -> int:
    """Wait until one backend of the test database waits on a lock, then terminate it."""
    admin = await asyncpg.connect(admin_dsn())
    try:
        for _ in range(100):
            dropped: int = await admin.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
            if dropped:
                return dropped
            await asyncio.sleep(0.1)
        return 0
    finally:
        await admin.close()


async def test_a_long_retry_waits_in_the_outbox_not_in_the_broker(
    live_client: httpx.AsyncClient,
    mailbox: MailCatcher,
    resources: Resources,
    broker: Redis,
    tmp_path: Path,
) -> None:
    """A countdown longer than the visibility timeout, held by Celery on Redis, is handed out
    again and again (celery#2481, #4400). A long retry now goes back to the outbox with a
    not-before time and the message is acknowledged: the broker holds nothing meanwhile, and
    the job runs exactly twice (the failure, then the success)."""
    env = {"TASKPIPE_BROKER_VISIBILITY_TIMEOUT": "3", "TASKPIPE_MAIL_RETRY_BACKOFF_SECONDS": "8"}
    worker = WorkerProcess(env, tmp_path / "worker.log")
    worker.start()
    try:
        mailbox.fail_next = 1  # the first attempt gets a 451: retry in 4-8 s, over 3 s
        account = await register(live_client)
        (row,) = await _outbox(resources)

        async def handed_back() -> bool:
            rows = await _outbox(resources)
            return bool(rows) and rows[0].retries == 1

        await _wait(handed_back)
        assert mailbox.deliveries_started == 1

        async def acknowledged() -> bool:  # the ack follows the job's commit by a moment
            return await broker.hlen("unacked") == 0

        await _wait(acknowledged, timeout=2)  # nothing held for a countdown
        assert await broker.llen("email") == 0
        (waiting,) = await _outbox(resources)
        wait_left = waiting.due_at - datetime.now(UTC)
        assert wait_left.total_seconds() > 2  # due after the visibility timeout

        async def relayed_and_mailed() -> bool:
            await relay_outbox(resources.session_factory, resources.publisher)  # beat's job
            return bool(mailbox.to(account.email))

        await _wait(relayed_and_mailed, timeout=30, step=1.0)
        await asyncio.sleep(7)  # twice the visibility timeout: room for any redelivery
        assert len(mailbox.to(account.email)) == 1
        assert worker.log_text().count(f"[{row.id}] received") == 2
        assert await _outbox(resources) == []
    finally:
        worker.stop()


async def test_a_worker_killed_between_smtp_and_the_record_resends_with_the_same_message_id(
    live_client: httpx.AsyncClient, mailbox: MailCatcher, resources: Resources, tmp_path: Path
) -> None:
    """What remains of at-least-once: SMTP accepted, the worker died before its record. The
    intent (committed before SMTP) tells the redelivered job a copy may be out; it sends
    again with the same Message-ID, so mail clients show one mail."""
    env = {"TASKPIPE_BROKER_VISIBILITY_TIMEOUT": "2"}
    first = WorkerProcess(env, tmp_path / "first.log")
    first.start()
    holder = await asyncpg.connect(admin_dsn())
    observer = await asyncpg.connect(admin_dsn())
    try:
        mailbox.delay_seconds = 1.0  # time to lock the intent's row while SMTP runs
        account = await register(live_client)
        await asyncio.to_thread(lambda: _until(lambda: mailbox.deliveries_started == 1))
        transaction = holder.transaction()
        await transaction.start()
        await holder.execute("SELECT 1 FROM sent_emails FOR UPDATE")  # the record must wait

        async def record_blocked() -> bool:
            # Another connection: inside a transaction the statistics are a frozen snapshot.
            waiting: int = await observer.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND wait_event_type = 'Lock'"
            )
            return waiting >= 1

        await _wait(record_blocked)
        assert len(mailbox.to(account.email)) == 1  # SMTP said 250 OK
        first.kill()  # SIGKILL at the worst instant: sent, not recorded
        await transaction.rollback()
    finally:
        first.kill()
        await holder.close()
        await observer.close()
    mailbox.delay_seconds = 0
    await asyncio.sleep(2.5)  # past the visibility timeout
    second = WorkerProcess(env, tmp_path / "second.log")
    second.start()
    try:
        copies = await asyncio.to_thread(mailbox.wait_for, account.email, 2, 30.0)
        assert copies[0]["Message-ID"] == copies[1]["Message-ID"]

        async def recorded() -> bool:  # SMTP's 250 comes a moment before the record's commit
            async with resources.session_factory() as session:
                (record,) = (await session.execute(select(SentEmail))).scalars().all()
            return record.sent_at is not None and record.attempts == 2

        await _wait(recorded, timeout=5)
        await asyncio.sleep(3)
        assert len(mailbox.to(account.email)) == 2  # one resend, and no more
    finally:
        second.stop()


def _until(condition, timeout: float = 20.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)
