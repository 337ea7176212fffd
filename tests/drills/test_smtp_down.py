"""SMTP refusing every mail (451), then not listening at all, while registrations go on: every
mail exactly once after it is back, and how long the last one took.

Shortened for CI: 20 s per outage instead of 60, retries from 1 s instead of 5 s, and a
visibility timeout of 20 s so that Celery holds countdowns up to 4 s only and every longer
retry waits in the outbox, relayed every second (beat: every 30 s). Both kinds of retry run,
as they do in production; only the waits are shorter.
"""

from __future__ import annotations

import asyncio
import os
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller

from devstack.machine import free_port
from tests.drills.harness import mails_by_address, report, wait_for_mails
from tests.support.factories import register, unique_email
from tests.support.smtp import MailCatcher
from tests.support.worker import WorkerProcess

pytestmark = pytest.mark.timeout(150)

MAILS = 10
OUTAGE_SECONDS = 20.0
REDELIVER_AFTER = timedelta(seconds=20)
WORKER_ENV = {
    "TASKPIPE_MAIL_RETRY_BACKOFF_SECONDS": "1",
    "TASKPIPE_BROKER_VISIBILITY_TIMEOUT": "20",
}


class Smtp:
    """An aiosmtpd server on a fixed port that can go away and come back (refusing every
    mail with a 451 meanwhile, or not listening at all), keeping what it received."""

    def __init__(self) -> None:
        self.port = free_port()
        self.catcher = MailCatcher()
        self._controller: Controller | None = None
        self.listen()

    def listen(self) -> None:
        self._controller = Controller(self.catcher, hostname="127.0.0.1", port=self.port)
        self._controller.start()

    def go_down(self, kind: str) -> None:
        if kind == "refusing":
            self.catcher.fail_next = 10**6
        else:
            self.close()

    def come_back(self, kind: str) -> None:
        if kind == "refusing":
            self.catcher.fail_next = 0
        else:
            self.listen()

    def close(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None


@pytest.mark.parametrize("kind", ["refusing", "not_listening"])
async def test_smtp_down_then_back_every_mail_once(
    kind: str,
    live_client: httpx.AsyncClient,
    relay: Any,
    tmp_path: Path,
) -> None:
    relay(os.environ["TASKPIPE_REDIS_URL"], REDELIVER_AFTER)
    smtp = Smtp()
    env = {**WORKER_ENV, "TASKPIPE_SMTP_PORT": str(smtp.port)}
    worker = WorkerProcess(env, tmp_path / "worker.log", pool="prefork", concurrency=2)
    addresses = [unique_email("smtp") for _ in range(MAILS)]
    try:
        worker.start()
        smtp.go_down(kind)
        down_at = time.monotonic()
        for address in addresses:
            await register(live_client, email=address)
        await asyncio.sleep(OUTAGE_SECONDS - (time.monotonic() - down_at))
        smtp.come_back(kind)
        back_at = time.monotonic()
        latest = await wait_for_mails(smtp.catcher, addresses, 60)
        await asyncio.sleep(3)  # room for a late duplicate
    finally:
        worker.stop()
        smtp.close()
    mails = mails_by_address(list(smtp.catcher.messages), addresses)
    log = worker.log_text()
    failed_attempts = log.count('"job_retry"')
    figures = {
        "outage": kind,
        "outage_s": round(back_at - down_at, 1),
        "mails": MAILS,
        "failed_attempts": failed_attempts,
        "retries_waiting_in_the_outbox": failed_attempts - log.count(" retry: Retry in"),
        "lost": sum(1 for n in mails.values() if n == 0),
        "doubled": sum(n - 1 for n in mails.values() if n > 1),
        "latest_mail_after_smtp_returned_s": round(latest, 1),
    }
    report("smtp_down", **figures)
    assert figures["lost"] == 0, figures
    assert figures["doubled"] == 0, figures
    assert "raised unexpected" not in log, figures
