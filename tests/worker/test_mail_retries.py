"""Mail retries through a real worker while SMTP refuses: they go on until the mail is out,
the outbox row keeps pace with them, and a mail job that fails for good is parked, not dropped.

Its own module, so no other worker consumes meanwhile.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from api.resources import Resources
from common.db.outbox import MAX_PUBLISHES
from common.jobs import Job, JobName, Queue
from common.models import OutboxJob
from tests.support.factories import register
from tests.support.smtp import MailCatcher
from tests.support.worker import WorkerProcess

pytestmark = pytest.mark.worker

FAST_RETRIES = {"TASKPIPE_MAIL_RETRY_BACKOFF_SECONDS": "0.2"}


async def _until(condition: Callable[[], Awaitable[bool]], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not await condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


async def _outbox(resources: Resources) -> list[OutboxJob]:
    async with resources.session_factory() as session:
        return list((await session.execute(select(OutboxJob))).scalars().all())


async def test_a_mail_refused_more_than_three_times_keeps_retrying_until_it_is_out(
    live_client: httpx.AsyncClient, mailbox: MailCatcher, resources: Resources, tmp_path: Path
) -> None:
    """The stall of the SMTP-down drill: `Task.retry(max_retries=None)` means "Celery's default
    of 3", so the fourth refusal ended the job (no retry, no mail; only the outbox relay, 10 min
    later, started it again from zero). Our policy alone decides now."""
    worker = WorkerProcess(FAST_RETRIES, tmp_path / "worker.log")
    worker.start()
    try:
        mailbox.fail_next = 5  # five 451s, then SMTP takes it
        account = await register(live_client)
        await asyncio.to_thread(mailbox.wait_for, account.email, 1, 30.0)

        async def finished() -> bool:
            return not await _outbox(resources)

        await _until(finished, timeout=10)  # the job's row went with its success
    finally:
        worker.stop()
    assert mailbox.deliveries_started == 6
    assert len(mailbox.to(account.email)) == 1
    assert "raised unexpected" not in worker.log_text()


async def test_while_celery_holds_a_retry_the_relay_leaves_the_job_alone(
    live_client: httpx.AsyncClient, mailbox: MailCatcher, resources: Resources, tmp_path: Path
) -> None:
    """A retry Celery holds for a countdown moves the job's outbox row on: the relay would
    otherwise publish a second copy of a job that is only waiting (10 min after the first
    publish), and a copy it publishes after a lost message carries the retry count on."""
    worker = WorkerProcess(FAST_RETRIES, tmp_path / "worker.log")
    worker.start()
    try:
        mailbox.fail_next = 10**6
        await register(live_client)

        async def retried_twice() -> bool:
            rows = await _outbox(resources)
            return bool(rows) and rows[0].retries >= 2

        await _until(retried_twice)
        (row,) = await _outbox(resources)
        redeliver_after = resources.publisher.redeliver_after
        assert row.due_at - datetime.now(UTC) > redeliver_after * 0.9
        assert row.publish_count == 1  # nothing published it again
    finally:
        worker.stop()


async def test_a_mail_job_that_fails_for_good_is_parked_for_an_operator(
    committed_data: None, resources: Resources, tmp_path: Path
) -> None:
    """A mail job that fails for good (an error no retry cures, or every retry used up) keeps
    its outbox row, parked where the relay no longer publishes it: once the cause is fixed, an
    operator publishes it again (docs/operations.md). Dropping it would lose the mail."""
    broken = Job(
        task_name=JobName.SEND_VERIFICATION_EMAIL,
        queue=Queue.EMAIL,
        kwargs={"token_id": "not-a-token-id"},  # ValueError in the job: never retried
    )
    async with resources.session_factory() as session:
        session.add(
            OutboxJob(
                id=broken.id,
                task_name=broken.task_name,
                queue=broken.queue,
                kwargs=broken.kwargs,
                publish_count=1,
            )
        )
        await session.commit()
    worker = WorkerProcess({}, tmp_path / "worker.log")
    worker.start()
    try:
        resources.publisher.publish(broken)

        async def parked() -> bool:
            rows = await _outbox(resources)
            return bool(rows) and rows[0].publish_count >= MAX_PUBLISHES

        await _until(parked)
    finally:
        worker.stop()
    (row,) = await _outbox(resources)
    assert row.id == broken.id
    assert '"job_parked"' in worker.log_text()
