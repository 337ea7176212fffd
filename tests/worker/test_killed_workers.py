"""Workers SIGKILLed mid-job: a pool child (an OOM kill) and the whole worker (a lost node).
Their jobs come back from the broker, within the bounds README "Reliability" states, with no
help from the outbox relay (none runs here; it would act 10 min after a publish).

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
from common.models import OutboxJob
from tests.support.factories import register
from tests.support.smtp import MailCatcher
from tests.support.worker import WorkerProcess

pytestmark = pytest.mark.worker


async def test_a_sigkilled_pool_childs_job_is_requeued_behind_the_queue(
    live_client: httpx.AsyncClient, mailbox: MailCatcher, resources: Resources, tmp_path: Path
) -> None:
    """Late acks and `task_reject_on_worker_lost`: Celery rejects the lost job with requeue
    (WorkerLostError), and kombu's Redis transport pushes a rejected message to the tail of
    its list while workers pop the head. So the job is not acknowledged and lost: it runs
    again once the jobs queued ahead of it are done (the relay, which publishes a copy only
    10 min after the publish, plays no part here: none runs)."""
    worker = WorkerProcess({}, tmp_path / "worker.log", pool="prefork", concurrency=1)
    worker.start()
    try:
        mailbox.delay_seconds = 2.0  # the first mail is inside DATA when its child dies
        killed = await register(live_client)
        deadline = time.monotonic() + 20
        while mailbox.deliveries_started == 0 and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        queued_ahead = [await register(live_client) for _ in range(2)]
        assert worker.kill_children() == 1
        mailbox.delay_seconds = 0
        started = time.monotonic()
        await asyncio.to_thread(mailbox.wait_for, killed.email, 1, 30.0)
        for account in queued_ahead:
            await asyncio.to_thread(mailbox.wait_for, account.email, 1, 30.0)
        back_after = time.monotonic() - started
        async with resources.session_factory() as session:
            (row,) = (await session.execute(select(OutboxJob))).scalars().all() or [None]
    finally:
        worker.stop()
    log = worker.log_text()
    assert "WorkerLostError" in log
    order = [message["To"] for message in mailbox.messages]
    # The killed child's DATA may have completed on the server side: then one copy comes
    # before the others (the at-least-once gap); the rerun comes after them, in any case.
    assert order[-1] == killed.email, order
    assert len({m["Message-ID"] for m in mailbox.to(killed.email)}) == 1
    assert back_after < 30
    assert row is None or row.publish_count == 1  # the relay published nothing


async def test_the_jobs_of_a_worker_killed_outright_come_back_within_the_visibility_timeout(
    live_client: httpx.AsyncClient, mailbox: MailCatcher, resources: Resources, tmp_path: Path
) -> None:
    """The whole worker SIGKILLed (a lost node): its unacknowledged jobs stay in the broker's
    unacked set until a worker sweeps for messages held past the visibility timeout. A
    replacement that is up before then finds them at its next sweep: every 10 s with
    `unacked_restore_throttle=1` (kombu's default sweeps on every 10th tick, ~100 s)."""
    env = {"TASKPIPE_BROKER_VISIBILITY_TIMEOUT": "2"}
    first = WorkerProcess(env, tmp_path / "first.log")
    first.start()
    try:
        mailbox.delay_seconds = 30  # the SMTP server stalls inside DATA
        account = await register(live_client)
        deadline = time.monotonic() + 20
        while mailbox.deliveries_started == 0 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        first.kill()
    finally:
        first.kill()
    killed_at = time.monotonic()
    mailbox.delay_seconds = 0
    second = WorkerProcess(env, tmp_path / "second.log")
    second.start()  # at once, as an orchestrator does: before the visibility timeout passed
    try:
        await asyncio.to_thread(mailbox.wait_for, account.email, 1, 30.0)
        back_after = time.monotonic() - killed_at
    finally:
        second.stop()
    assert back_after < 2 + 10 + 5  # the visibility timeout, one sweep, a worker's start
