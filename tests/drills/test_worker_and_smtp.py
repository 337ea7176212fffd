"""Workers killed mid-batch, two beats at once: every mail delivered, duplicates
counted against their bound."""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from api.resources import Resources
from common.models import OutboxJob
from tests.drills.harness import mails_by_address, report
from tests.support.factories import register, unique_email
from tests.support.rows import verify_address
from tests.support.smtp import SMTPServer
from tests.support.worker import WorkerProcess

pytestmark = pytest.mark.timeout(300)

BATCH = 50
VISIBILITY_TIMEOUT = 10  # seconds; 300 in production (the drill would otherwise wait 5 min)
RESTORE_SWEEP = 10  # seconds between the workers' scans for messages past it (worker.app)
REDELIVER_AFTER = timedelta(seconds=60)
"""TASKPIPE_OUTBOX_REDELIVER_SECONDS, 600 in production: longer than the broker's bound, as
there, so the drill measures the broker bringing jobs back, not the relay."""


async def _delivered(catcher: Any, addresses: list[str], count: int, timeout: float) -> None:
    """Wait until `count` of `addresses` have their mail."""
    deadline = time.monotonic() + timeout
    while True:
        mails = mails_by_address(list(catcher.messages), addresses)
        if sum(1 for n in mails.values() if n) >= count:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"fewer than {count} mails in {timeout}s")
        await asyncio.sleep(0.05)


async def _outbox_rows(resources: Resources) -> int:
    async with resources.session_factory() as session:
        return int((await session.execute(select(func.count(OutboxJob.id)))).scalar_one())


async def test_worker_sigkill_children_then_the_whole_group_mid_batch(
    live_client: httpx.AsyncClient,
    private_smtp: SMTPServer,
    relay: Any,
    resources: Resources,
    tmp_path: Path,
) -> None:
    """Beat's relay runs as in production. A SIGKILLed pool child's job is rejected with
    requeue (WorkerLostError) and runs again behind the jobs queued before it; the jobs of
    the killed group come back once the visibility timeout has passed, at the next sweep."""
    relay(os.environ["TASKPIPE_REDIS_URL"], REDELIVER_AFTER)
    env = {
        "TASKPIPE_SMTP_PORT": str(private_smtp.port),
        "TASKPIPE_BROKER_VISIBILITY_TIMEOUT": str(VISIBILITY_TIMEOUT),
    }
    catcher = private_smtp.catcher
    catcher.delay_seconds = 0.15  # each mail takes a moment: kills land mid-send
    worker = WorkerProcess(env, tmp_path / "first.log", pool="prefork", concurrency=2)
    worker.start()
    addresses = [unique_email("batch") for _ in range(BATCH)]
    for address in addresses:
        await register(live_client, email=address)
    try:
        await _delivered(catcher, addresses, 10, 60)
        children_killed = worker.kill_children()  # the pool's processes only (OOM kills)
        await _delivered(catcher, addresses, 25, 60)
        worker.kill()  # the whole group: no ack, no warm shutdown (a lost node)
        killed_at = time.monotonic()
        worker = WorkerProcess(env, tmp_path / "second.log", pool="prefork", concurrency=2)
        worker.start()  # the orchestrator restarts it
        await _delivered(catcher, addresses, BATCH, 90)
        last_after_kill = time.monotonic() - killed_at
        # Every job finished (its outbox row gone), those of the killed group included.
        while await _outbox_rows(resources) and time.monotonic() - killed_at < 90:
            await asyncio.sleep(0.2)
        jobs_done_after_kill = time.monotonic() - killed_at
        await asyncio.sleep(VISIBILITY_TIMEOUT)  # room for any late redelivery
    finally:
        worker.stop()
    mails = mails_by_address(list(catcher.messages), addresses)
    doubled = {address: n for address, n in mails.items() if n > 1}
    same_id = all(
        len({m["Message-ID"] for m in catcher.messages if m["To"] == address}) == 1
        for address in doubled
    )
    figures = {
        "mails": BATCH,
        "children_killed": children_killed,
        "lost": sum(1 for n in mails.values() if n == 0),
        "doubled": sum(n - 1 for n in doubled.values()),
        "doubled_with_the_same_message_id": same_id,
        "visibility_timeout_s": VISIBILITY_TIMEOUT,
        "restore_sweep_s": RESTORE_SWEEP,
        "last_mail_after_group_kill_s": round(last_after_kill, 1),
        "every_job_done_after_group_kill_s": round(jobs_done_after_kill, 1),
    }
    report("worker_sigkill", **figures)
    assert figures["lost"] == 0, figures
    # At most one copy per job in SMTP at a kill (one per child process, two kills).
    assert figures["doubled"] <= 2 * children_killed, figures
    assert same_id, figures
    # The broker brought the group's jobs back, well before the relay would have.
    assert jobs_done_after_kill <= VISIBILITY_TIMEOUT + RESTORE_SWEEP + 10, figures


async def test_two_beats_at_once_send_one_digest_per_user(
    live_client: httpx.AsyncClient, private_smtp: SMTPServer, resources: Resources, tmp_path: Path
) -> None:
    from worker.app import app as celery_app

    env = {"TASKPIPE_SMTP_PORT": str(private_smtp.port)}
    worker = WorkerProcess(env, tmp_path / "worker.log", pool="prefork", concurrency=2)
    worker.start()
    try:
        accounts = [await register(live_client) for _ in range(5)]
        addresses = [account.email for account in accounts]
        async with resources.session_factory() as session:  # reminders go to verified ones
            for account in accounts:
                await verify_address(session, account)
            await session.commit()
        # Verification mails out of the way (a slow worker start once let one arrive later).
        await _delivered(private_smtp.catcher, addresses, len(addresses), 60)
        await asyncio.sleep(1)
        private_smtp.catcher.clear()
        due = (datetime.now(UTC) + timedelta(minutes=30)).isoformat()
        for account in accounts:
            for n in range(3):
                created = await live_client.post(
                    "/api/v1/tasks",
                    json={"title": f"Due soon {n} {uuid.uuid4().hex[:4]}", "due_date": due},
                    headers=account.headers,
                )
                assert created.status_code == 201
        for _ in range(2):  # the scans of two beats, at the same moment
            celery_app.send_task("taskpipe.reminders.scan", queue="email")
        await _delivered(private_smtp.catcher, addresses, len(addresses), 60)
        await asyncio.sleep(4)
    finally:
        worker.stop()
    digests = mails_by_address(list(private_smtp.catcher.messages), addresses)
    figures = {"users": len(accounts), "digests": sum(digests.values())}
    report("two_beats", **figures)
    assert list(digests.values()) == [1] * len(accounts), figures


@pytest.fixture(autouse=True)
def _no_global_worker() -> None:
    """These drills start their own workers; nothing else consumes meanwhile."""
