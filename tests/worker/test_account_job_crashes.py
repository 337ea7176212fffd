"""Account jobs cut short by a worker killed outright (SIGKILL): the next worker finishes them,
once. Its own module, so no other worker is consuming while one is killed.

Each job is held at a known point by a table lock the test takes (the job waits on it, as it
would on a slow query), the worker is killed there, and a second worker gets the job back
after the broker's visibility timeout (2 s here).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select, text, update

from api.resources import Resources
from common.models import AccountExport, ExportStatus, User
from tests.support.accounts import open_archive
from tests.support.factories import Account, register
from tests.support.smtp import MailCatcher
from tests.support.worker import WorkerProcess

pytestmark = pytest.mark.worker

SHORT_VISIBILITY = {"TASKPIPE_BROKER_VISIBILITY_TIMEOUT": "2"}


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.1)


@asynccontextmanager
async def table_locked(resources: Resources, table: str) -> AsyncIterator[None]:
    """Every statement on `table` waits until the block ends."""
    async with resources.engine.connect() as connection:
        transaction = await connection.begin()
        await connection.execute(text(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE"))
        try:
            yield
        finally:
            await transaction.rollback()


async def killed_then_replaced(
    tmp_path: Path, stuck: Callable[[], Awaitable[bool]], resources: Resources, table: str
) -> WorkerProcess:
    """Start a worker, wait until `stuck()` (the job waits on the locked `table`), kill it,
    and start the next one once the broker would hand the job out again."""
    first = WorkerProcess(SHORT_VISIBILITY, tmp_path / "first.log")
    async with table_locked(resources, table):
        first.start()
        try:
            await eventually(stuck)
            await asyncio.sleep(0.5)  # it is waiting on the lock now
        finally:
            first.kill()
    await asyncio.sleep(2.5)
    second = WorkerProcess(SHORT_VISIBILITY, tmp_path / "second.log")
    second.start()
    return second


async def _verified(client: httpx.AsyncClient, resources: Resources) -> Account:
    account = await register(client)
    async with resources.session_factory() as session:
        await session.execute(
            update(User).where(User.email == account.email).values(email_verified_at=text("now()"))
        )
        await session.commit()
    return account


async def _export_status(resources: Resources, export_id: str) -> ExportStatus | None:
    async with resources.session_factory() as session:
        status: ExportStatus | None = await session.scalar(
            select(AccountExport.status).where(AccountExport.id == export_id)
        )
        return status


async def test_a_worker_killed_mid_export_is_followed_by_one_that_finishes_it(
    live_client: httpx.AsyncClient, mailbox: MailCatcher, resources: Resources, tmp_path: Path
) -> None:
    account = await _verified(live_client, resources)
    for title in ("First task", "Second task"):
        await live_client.post("/api/v1/tasks", json={"title": title}, headers=account.headers)
    requested = await live_client.post("/api/v1/users/me/exports", headers=account.headers)
    export_id = requested.json()["id"]

    async def running() -> bool:
        return await _export_status(resources, export_id) is ExportStatus.RUNNING

    second = await killed_then_replaced(tmp_path, running, resources, "tasks")
    try:

        async def ready() -> bool:
            return await _export_status(resources, export_id) is ExportStatus.READY

        await eventually(ready)
        # The verification mail and the export's, which goes out once.
        await asyncio.to_thread(mailbox.wait_for, account.email, 2, 30.0)
        await asyncio.sleep(1)
        subjects = [m["Subject"] for m in mailbox.to(account.email)]
        assert subjects.count("Your Taskpipe export is ready") == 1, subjects
    finally:
        second.stop()
    async with resources.session_factory() as session:
        archive = await session.scalar(
            select(AccountExport.archive).where(AccountExport.id == export_id)
        )
    assert archive is not None
    document, _ = open_archive(archive)
    assert sorted(t["title"] for t in document["tasks"]) == ["First task", "Second task"]
