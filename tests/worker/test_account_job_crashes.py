"""Account jobs cut short by a worker killed outright (SIGKILL): the next worker finishes them,
once. Its own module, so no other worker is consuming while one is killed.

Each job is held at a known point by a table lock the test takes (the job waits on it, as it
would on a slow query), the worker is killed there, and a second worker gets the job back
after the broker's visibility timeout (2 s here).
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select, text, update

from api.resources import Resources
from common.models import AccountExport, Category, ExportStatus, Task, User
from tests.support.accounts import open_archive
from tests.support.factories import PASSWORD, Account, register
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
    tmp_path: Path,
    stuck: Callable[[], Awaitable[bool]],
    resources: Resources,
    table: str,
    while_down: Callable[[], Awaitable[None]] | None = None,
) -> WorkerProcess:
    """Start a worker, wait until `stuck()` (the job waits on the locked `table`), kill it,
    run `while_down()` while no worker runs, and start the next one once the broker would
    hand the job out again. (Checked after the replacement started, the state of the
    killed job races the new worker, which may finish it before it reports ready.)"""
    first = WorkerProcess(SHORT_VISIBILITY, tmp_path / "first.log")
    async with table_locked(resources, table):
        first.start()
        try:
            await eventually(stuck)
            await asyncio.sleep(0.5)  # it is waiting on the lock now
        finally:
            first.kill()
    if while_down is not None:
        await while_down()
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


async def test_a_worker_killed_mid_erasure_is_followed_by_one_that_finishes_it(
    app: FastAPI, live_client: httpx.AsyncClient, resources: Resources, tmp_path: Path
) -> None:
    """The tasks go in the first batches; the worker is killed waiting to delete the
    categories; the next worker erases the rest and the user row."""
    account = await register(live_client)
    user_id = uuid.UUID(account.user["id"])
    headers = account.headers
    await live_client.post("/api/v1/categories", json={"name": "Work"}, headers=headers)
    for number in range(3):
        await live_client.post("/api/v1/tasks", json={"title": f"Task {number}"}, headers=headers)
    app.state.resources = dataclasses.replace(
        resources, settings=resources.settings.model_copy(update={"account_deletion_grace_days": 0})
    )
    try:
        deleted = await live_client.request(
            "DELETE", "/api/v1/users/me", json={"password": PASSWORD}, headers=headers
        )
    finally:
        app.state.resources = resources
    assert deleted.status_code == 202

    async def count(model: type[Task] | type[Category] | type[User], *where: Any) -> int:
        async with resources.session_factory() as session:
            return int(
                await session.scalar(select(func.count()).select_from(model).where(*where)) or 0
            )

    async def halfway() -> bool:
        return await count(Task, Task.user_id == user_id) == 0

    async def killed_halfway() -> None:
        assert await count(User, User.id == user_id) == 1  # the rest waits for the next worker
        assert await count(Category, Category.user_id == user_id) == 1

    second = await killed_then_replaced(
        tmp_path, halfway, resources, "categories", while_down=killed_halfway
    )
    try:

        async def erased() -> bool:
            return await count(User, User.id == user_id) == 0

        await eventually(erased)
    finally:
        second.stop()
    assert await count(Category, Category.user_id == user_id) == 0
