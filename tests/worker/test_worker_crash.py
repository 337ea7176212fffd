"""A worker killed mid-job: the job is redone by the next worker, within the visibility
timeout and one sweep, and the mail goes out once.

Its own module, so no other worker is consuming while this one is killed.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import pytest

from tests.support.factories import register
from tests.support.smtp import MailCatcher
from tests.support.worker import WorkerProcess

pytestmark = pytest.mark.worker


async def test_worker_killed_mid_mail_redoes_the_job_and_mails_once(
    live_client: httpx.AsyncClient, mailbox: MailCatcher, tmp_path: Path
) -> None:
    """The replacement starts at once, as an orchestrator starts it, before the visibility
    timeout passed: it finds the job at its next sweep for messages held past the timeout,
    every 10 s (`unacked_restore_throttle=1`; kombu's default sweeps every ~100 s)."""
    env = {"TASKPIPE_BROKER_VISIBILITY_TIMEOUT": "2"}
    first = WorkerProcess(env, tmp_path / "first.log")
    first.start()
    try:
        mailbox.delay_seconds = 30  # the SMTP server stalls inside DATA
        account = await register(live_client)
        deadline = time.monotonic() + 20
        while mailbox.deliveries_started == 0 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert mailbox.deliveries_started == 1
        first.kill()  # SIGKILL mid-job: no ack, no warm shutdown
    finally:
        first.kill()
    killed_at = time.monotonic()
    mailbox.delay_seconds = 0
    second = WorkerProcess(env, tmp_path / "second.log")
    second.start()
    try:
        await asyncio.to_thread(mailbox.wait_for, account.email, 1, 30.0)
        assert time.monotonic() - killed_at < 2 + 10 + 5  # timeout, a sweep, a worker's start
        await asyncio.sleep(2)
        assert len(mailbox.to(account.email)) == 1
    finally:
        second.stop()
