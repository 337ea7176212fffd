"""A worker killed in the middle of a webhook delivery: the next worker delivers it again under
the same `webhook-id`, so the receiver can tell it is the same event (at-least-once).

Its own module, so no other worker is consuming while this one is killed.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import pytest

from api.resources import Resources
from tests.support.tasks import create_task
from tests.support.webhook_receiver import Answer, WebhookReceiver
from tests.support.webhooks import create_webhook, deliveries, webhook_owner
from tests.support.worker import WorkerProcess

pytestmark = pytest.mark.worker

ENV = {"TASKPIPE_BROKER_VISIBILITY_TIMEOUT": "2", "TASKPIPE_WEBHOOK_ALLOW_INSECURE": "true"}


async def test_a_worker_killed_mid_delivery_is_followed_by_the_same_webhook_id(
    live_hooks: httpx.AsyncClient,
    tmp_path: Path,
    resources: Resources,
) -> None:
    with WebhookReceiver() as receiver:
        receiver.answer(Answer(200, delay_seconds=30))  # the receiver holds the first request
        account = await webhook_owner(live_hooks, resources)
        webhook = await create_webhook(live_hooks, account, receiver.url(), events=["task.created"])
        receiver.secret = webhook["secret"]
        first = WorkerProcess(ENV, tmp_path / "first.log")
        first.start()
        try:
            await create_task(live_hooks, account, title="Renew the passport")
            await asyncio.to_thread(receiver.wait_for, 1, 20.0)
            first.kill()  # SIGKILL mid-request: no ack, no record of the attempt
        finally:
            first.kill()
        await asyncio.sleep(2.5)  # past the visibility timeout, the broker hands the job out again
        second = WorkerProcess(ENV, tmp_path / "second.log")
        second.start()
        try:
            killed, redone = await asyncio.to_thread(receiver.wait_for, 2, 30.0)
            deadline = time.monotonic() + 20
            while (await deliveries(live_hooks, account, webhook["id"]))[0]["status"] == "pending":
                assert time.monotonic() < deadline
                await asyncio.sleep(0.2)
            await asyncio.sleep(1)
            assert len(receiver.requests) == 2
        finally:
            second.stop()

    assert killed.headers["webhook-id"] == redone.headers["webhook-id"]
    assert killed.body == redone.body
    assert killed.signature_valid and redone.signature_valid
    (delivery,) = await deliveries(live_hooks, account, webhook["id"])
    assert delivery["status"] == "delivered"
    (attempt,) = delivery["attempts"]  # the killed attempt left no record; the receiver did
    assert attempt["status_code"] == 200
