"""Drills: real processes (API server, Celery worker, redis-server, SMTP) under real outages.

`make test-drills` runs them; each appends its figures to `.taskpipe/drills.jsonl`, and the
figures of the run are printed at the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta

import pytest

from api.resources import Resources
from common.jobs import JobPublisher, create_producer
from common.maintenance.outbox import relay_outbox
from devstack.machine import free_port
from tests.drills.harness import DRILL_ENV, REPORT
from tests.support.smtp import SMTPServer

pytestmark = pytest.mark.worker
# Drills register many users from one address: the in-process app gets the drill limits too.
# The outbox publishes again after 20 s instead of 10 min, to keep drills short.
os.environ.update({**DRILL_ENV, "TASKPIPE_OUTBOX_REDELIVER_SECONDS": "20"})


def pytest_sessionstart(session: pytest.Session) -> None:
    REPORT.unlink(missing_ok=True)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if REPORT.exists():
        terminalreporter.section("drill figures")
        for line in REPORT.read_text().splitlines():
            terminalreporter.write_line(json.dumps(json.loads(line)))


@pytest.fixture
def private_smtp() -> Iterator[SMTPServer]:
    server = SMTPServer(port=free_port())
    server.start()
    yield server
    server.stop()


async def relay_every(
    resources: Resources, broker_url: str, redeliver_after: timedelta, stop: asyncio.Event
) -> None:
    """Beat's outbox relay, every second instead of every 30 s, to keep drills short."""
    settings = resources.settings.model_copy(update={"broker_url": broker_url})
    publisher = JobPublisher(create_producer(settings), redeliver_after=redeliver_after)
    while not stop.is_set():
        # The broker or the database is down in the drill: the next round tries again.
        with contextlib.suppress(Exception):
            await relay_outbox(resources.session_factory, publisher)
        await asyncio.sleep(1)


@pytest.fixture
async def relay(resources: Resources) -> AsyncIterator[object]:
    stop = asyncio.Event()
    tasks: list[asyncio.Task[None]] = []

    def start(broker_url: str, redeliver_after: timedelta) -> None:
        tasks.append(asyncio.create_task(relay_every(resources, broker_url, redeliver_after, stop)))

    yield start
    stop.set()
    for task in tasks:
        await task
