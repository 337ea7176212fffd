"""Webhooks through a real worker to a real HTTP receiver: the change's delivery is signed and
verifies, a 500 is retried by the worker (a Celery countdown) under the same `webhook-id`, and an
endpoint failing for 3 days is disabled and its owner mailed. Time-driven cases (Retry-After,
the day of retries, the 3 days) run with a chosen `now` in
tests/integration/test_webhook_sending.py."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import update
from standardwebhooks.webhooks import Webhook

from api.resources import Resources
from common.jobs import JobName, Queue
from common.models import WebhookEndpoint
from tests.support.factories import Account
from tests.support.flower import FLOWER_PASSWORD, FLOWER_USER
from tests.support.smtp import MailCatcher, SMTPServer, text_part
from tests.support.tasks import create_task
from tests.support.webhook_receiver import WebhookReceiver
from tests.support.webhooks import WEBHOOKS, create_webhook, deliveries, webhook_owner
from tests.support.worker import WorkerProcess

pytestmark = pytest.mark.worker

INSECURE = {"TASKPIPE_WEBHOOK_ALLOW_INSECURE": "true"}
"""The receiver listens on loopback over http."""


@pytest.fixture(scope="module")
def webhook_worker(
    database: str, smtp_server: SMTPServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WorkerProcess]:
    worker = WorkerProcess(env=INSECURE, log_path=tmp_path_factory.mktemp("worker") / "worker.log")
    worker.start()
    yield worker
    worker.stop()


async def settled(
    client: httpx.AsyncClient, account: Account, webhook_id: str, timeout: float = 30.0
) -> dict[str, Any]:
    """The webhook's one delivery once it is no longer pending."""
    deadline = time.monotonic() + timeout
    while True:
        (delivery,) = await deliveries(client, account, webhook_id)
        if delivery["status"] != "pending" or time.monotonic() > deadline:
            return delivery
        await asyncio.sleep(0.2)


def test_deliveries_go_to_their_own_queue() -> None:
    from worker.app import app as celery_app

    route = celery_app.amqp.router.route({}, JobName.DELIVER_WEBHOOK)
    assert route["queue"].name == Queue.WEBHOOKS


async def test_a_change_reaches_the_receiver_signed_and_a_500_is_retried_under_the_same_id(
    live_hooks: httpx.AsyncClient,
    webhook_worker: WorkerProcess,
    resources: Resources,
) -> None:
    with WebhookReceiver() as receiver:
        receiver.fail_next(1, status=500)
        account = await webhook_owner(live_hooks, resources)
        webhook = await create_webhook(live_hooks, account, receiver.url(), events=["task.created"])
        receiver.secret = webhook["secret"]
        task = await create_task(live_hooks, account, title="Call the plumber")
        failed, delivered = await asyncio.to_thread(receiver.wait_for, 2, 30.0)

    assert failed.headers["webhook-id"] == delivered.headers["webhook-id"]
    assert failed.body == delivered.body
    assert failed.signature_valid and delivered.signature_valid
    event = Webhook(webhook["secret"]).verify(delivered.body, delivered.headers)
    assert (event["type"], event["data"]["id"]) == ("task.created", task["id"])
    log = await settled(live_hooks, account, webhook["id"])
    assert log["status"] == "delivered"
    assert [a["status_code"] for a in log["attempts"]] == [500, 200]
    assert delivered.headers["webhook-id"] == f"msg_{uuid.UUID(log['id']).hex}"
    first_retry = datetime.fromisoformat(
        log["attempts"][1]["attempted_at"]
    ) - datetime.fromisoformat(log["attempts"][0]["attempted_at"])
    assert first_retry <= timedelta(seconds=12)  # the first retry within 10 s (and a run)


async def test_an_endpoint_failing_for_three_days_is_disabled_and_its_owner_mailed(
    live_hooks: httpx.AsyncClient,
    resources: Resources,
    mailbox: MailCatcher,
    webhook_worker: WorkerProcess,
) -> None:
    with WebhookReceiver() as receiver:
        receiver.fail_next(5, status=500)
        account = await webhook_owner(live_hooks, resources)
        webhook = await create_webhook(live_hooks, account, receiver.url(), events=["task.*"])
        async with resources.session_factory() as session:
            # Failing since three days (and a minute): the next failure disables it.
            await session.execute(
                update(WebhookEndpoint)
                .where(WebhookEndpoint.id == uuid.UUID(webhook["id"]))
                .values(failing_since=datetime.now(UTC) - timedelta(days=3, minutes=1))
            )
            await session.commit()
        await create_task(live_hooks, account, title="One more")
        # The verification link of the registration, and the notice.
        mails = await asyncio.to_thread(mailbox.wait_for, account.email, 2, 30.0)
        (mail,) = [m for m in mails if "webhook" in m["Subject"]]
        assert len(receiver.requests) == 1  # disabled: not retried

    assert mail["Subject"] == "Your Taskpipe webhook was disabled after 3 days of failed deliveries"
    body = text_part(mail)
    assert receiver.url() in body
    assert f"/api/v1/webhooks/{webhook['id']}" in body
    shown = (await live_hooks.get(f"{WEBHOOKS}/{webhook['id']}", headers=account.headers)).json()
    assert shown["enabled"] is False
    assert "HTTP 500" in shown["disabled_reason"]
    assert (await settled(live_hooks, account, webhook["id"]))["status"] == "failed"


async def test_flower_shows_the_deliveries_and_their_queue(
    live_hooks: httpx.AsyncClient,
    resources: Resources,
    flower: str,
    webhook_worker: WorkerProcess,
) -> None:
    with WebhookReceiver() as receiver:
        account = await webhook_owner(live_hooks, resources)
        webhook = await create_webhook(live_hooks, account, receiver.url(), events=["task.*"])
        await create_task(live_hooks, account)
        await asyncio.to_thread(receiver.wait_for, 1, 30.0)
    assert (await settled(live_hooks, account, webhook["id"]))["status"] == "delivered"
    auth = (FLOWER_USER, FLOWER_PASSWORD)
    async with httpx.AsyncClient(base_url=flower, auth=auth) as monitor:
        deadline = time.monotonic() + 20
        while True:
            tasks = (
                await monitor.get("/api/tasks", params={"taskname": JobName.DELIVER_WEBHOOK})
            ).json()
            if [task["result"] for task in tasks.values()] == ["'delivered'"]:
                break
            assert time.monotonic() < deadline, tasks
            await asyncio.sleep(0.3)
        queues = (await monitor.get("/api/queues/length")).json()["active_queues"]
    assert Queue.WEBHOOKS in {queue["name"] for queue in queues}
