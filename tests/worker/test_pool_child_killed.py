"""A pool child SIGKILLed mid-job (an OOM kill): its job comes back from the broker, behind
the jobs queued before it, with no help from the outbox relay (none runs here; it would act
10 min after a publish). The whole worker killed: test_worker_crash.py.

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
