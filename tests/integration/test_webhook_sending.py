"""One delivery attempt as the worker's job makes it (`WebhookSender.send`), against a real HTTP
receiver, with time driven by the `now` each call is given: signatures, retries and their
schedule, Retry-After, what is never retried, SSRF at delivery time, the endpoint disabled after
3 days of failures and its owner mailed. The Celery side (retries, a killed worker) is
tests/worker/test_webhook_jobs.py."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from standardwebhooks.webhooks import Webhook

from api.resources import Resources
from common.db.locks import try_advisory_lock
from common.jobs import JobName
from common.models import MailQuota, OutboxJob, User, WebhookDelivery, WebhookEndpoint
from common.webhooks.retention import DELIVERY_RETENTION, purge_old_deliveries
from common.webhooks.sending import DISABLE_AFTER, SendResult, Sent, WebhookSender, message_id
from tests.support.factories import Account
from tests.support.rows import verify_address
from tests.support.tasks import create_task
from tests.support.webhook_receiver import Answer, FakeDNS, WebhookReceiver
from tests.support.webhooks import DNS, create_webhook, deliveries, webhook_client, webhook_owner

RETRY_WITHIN = 10.0


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as running:
        yield running


@pytest.fixture
async def hooks(app: FastAPI, test_resources: Resources) -> AsyncIterator[httpx.AsyncClient]:
    async with webhook_client(app, test_resources, webhook_allow_insecure=True) as client:
        yield client


def sender(resources: Resources, *, allow_insecure: bool = True) -> WebhookSender:
    settings = resources.settings.model_copy(update={"webhook_allow_insecure": allow_insecure})
    return WebhookSender(resources.engine, resources.unit_of_work, settings, FakeDNS(DNS))


async def owed(
    client: httpx.AsyncClient, account: Account, url: str, receiver: WebhookReceiver | None = None
) -> tuple[dict[str, Any], uuid.UUID]:
    """A webhook to `url` and the delivery of one task change owed to it."""
    webhook = await create_webhook(client, account, url, events=["task.created"])
    if receiver is not None:
        receiver.secret = webhook["secret"]
    await create_task(client, account, title="Water the plants")
    (delivery,) = await deliveries(client, account, webhook["id"])
    return webhook, uuid.UUID(delivery["id"])


async def send(
    resources: Resources, delivery_id: uuid.UUID, now: datetime, *, round_: int = 1, **options: Any
) -> SendResult:
    return await sender(resources, **options).send(
        delivery_id, round_, now=now, retry_within=RETRY_WITHIN
    )


async def log_of(client: httpx.AsyncClient, account: Account, webhook_id: str) -> dict[str, Any]:
    (delivery,) = await deliveries(client, account, webhook_id)
    return delivery


async def endpoint(session: AsyncSession, webhook: dict[str, Any]) -> WebhookEndpoint:
    found = await session.get(WebhookEndpoint, uuid.UUID(webhook["id"]), populate_existing=True)
    assert found is not None
    return found


async def test_a_delivery_is_signed_as_standard_webhooks_verifies_it(
    hooks: httpx.AsyncClient, test_resources: Resources, receiver: WebhookReceiver
) -> None:
    account = await webhook_owner(hooks, test_resources)
    webhook, delivery_id = await owed(hooks, account, receiver.url(), receiver)
    now = datetime.now(UTC)
    assert (await send(test_resources, delivery_id, now)).outcome is Sent.DELIVERED

    (request,) = receiver.requests
    assert request.signature_valid is True
    assert request.headers["webhook-id"] == message_id(delivery_id) == f"msg_{delivery_id.hex}"
    assert request.headers["content-type"] == "application/json"
    # The reference implementation agrees with our own verification.
    event = Webhook(webhook["secret"]).verify(request.body, request.headers)
    assert event["type"] == "task.created"
    assert event["data"]["title"] == "Water the plants"
    log = await log_of(hooks, account, webhook["id"])
    assert log["status"] == "delivered"
    assert log["finished_at"] is not None
    (attempt,) = log["attempts"]
    assert attempt["outcome"] == "delivered"
    assert attempt["status_code"] == 200
    assert attempt["duration_ms"] >= 0
    assert attempt["next_attempt_at"] is None
    assert orjson.loads(request.body) == log["payload"]
    # Done is done: a second run of the job sends nothing.
    assert (await send(test_resources, delivery_id, now)).outcome is Sent.NOTHING
    assert len(receiver.requests) == 1


async def test_a_server_error_is_retried_under_the_same_id_until_it_is_delivered(
    hooks: httpx.AsyncClient,
    test_resources: Resources,
    receiver: WebhookReceiver,
    session: AsyncSession,
) -> None:
    account = await webhook_owner(hooks, test_resources)
    webhook, delivery_id = await owed(hooks, account, receiver.url(), receiver)
    receiver.answer(Answer(503, body=b"down for maintenance"))
    now = datetime.now(UTC)
    assert (await send(test_resources, delivery_id, now)).outcome is Sent.RETRY
    assert (await endpoint(session, webhook)).failing_since == now
    later = now + timedelta(seconds=8)
    assert (await send(test_resources, delivery_id, later)).outcome is Sent.DELIVERED
    assert (await endpoint(session, webhook)).failing_since is None

    first, second = receiver.requests
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    assert first.body == second.body
    assert first.signature_valid and second.signature_valid
    log = await log_of(hooks, account, webhook["id"])
    failed, delivered = log["attempts"]
    assert (failed["outcome"], failed["status_code"]) == ("http_error", 503)
    assert failed["error"] == "HTTP 503 Service Unavailable"
    assert failed["response_body"] == "down for maintenance"
    next_at = datetime.fromisoformat(failed["next_attempt_at"])
    assert next_at == now + timedelta(seconds=RETRY_WITHIN)
    assert delivered["status_code"] == 200
    assert log["status"] == "delivered"


async def test_retry_after_is_honoured_before_the_next_attempt(
    hooks: httpx.AsyncClient, test_resources: Resources, receiver: WebhookReceiver
) -> None:
    account = await webhook_owner(hooks, test_resources)
    webhook, delivery_id = await owed(hooks, account, receiver.url(), receiver)
    receiver.answer(Answer(429, headers={"Retry-After": "120"}))
    now = datetime.now(UTC)
    assert (await send(test_resources, delivery_id, now)).outcome is Sent.RETRY
    early = await send(test_resources, delivery_id, now + timedelta(seconds=60))
    assert early.outcome is Sent.WAIT
    assert early.retry_later
    assert len(receiver.requests) == 1  # nothing sent before the receiver's time
    log = await log_of(hooks, account, webhook["id"])
    assert datetime.fromisoformat(log["attempts"][0]["next_attempt_at"]) == now + timedelta(
        seconds=120
    )
    done = await send(test_resources, delivery_id, now + timedelta(seconds=121))
    assert done.outcome is Sent.DELIVERED


@pytest.mark.parametrize(
    ("answer", "outcome"),
    [
        (Answer(410), "http_error"),
        (Answer(400), "http_error"),
        (Answer(401), "http_error"),
        (Answer(301, headers={"Location": "https://elsewhere.example.com/"}), "redirect"),
    ],
)
async def test_other_client_errors_and_redirects_are_not_retried(
    hooks: httpx.AsyncClient,
    test_resources: Resources,
    receiver: WebhookReceiver,
    answer: Answer,
    outcome: str,
) -> None:
    account = await webhook_owner(hooks, test_resources)
    webhook, delivery_id = await owed(hooks, account, receiver.url(), receiver)
    receiver.answer(answer)
    result = await send(test_resources, delivery_id, datetime.now(UTC))
    assert result.outcome is Sent.FAILED
    assert not result.retry_later
    log = await log_of(hooks, account, webhook["id"])
    assert log["status"] == "failed"
    assert log["attempts"][0]["outcome"] == outcome
    assert log["attempts"][0]["next_attempt_at"] is None


async def test_retries_end_with_the_retry_period(
    hooks: httpx.AsyncClient, test_resources: Resources, receiver: WebhookReceiver
) -> None:
    account = await webhook_owner(hooks, test_resources)
    webhook, delivery_id = await owed(hooks, account, receiver.url(), receiver)
    receiver.fail_next(2)
    now = datetime.now(UTC)
    assert (
        await send(test_resources, delivery_id, now + timedelta(hours=23))
    ).outcome is Sent.RETRY
    last = await send(test_resources, delivery_id, now + timedelta(hours=24, seconds=1))
    assert last.outcome is Sent.FAILED
    assert (await log_of(hooks, account, webhook["id"]))["status"] == "failed"


@pytest.mark.parametrize(
    ("url", "allow_insecure", "reason"),
    [
        ("http://127.0.0.1:9/hook", False, "only https"),
        ("https://127.0.0.1:9/hook", False, "loopback"),
        ("http://169.254.169.254/latest/meta-data/", True, "metadata"),
        ("http://10.0.0.1/hook", True, "private"),
        ("https://metadata.example.com/hook", True, "resolves to a cloud metadata"),
        ("https://private.example.com/hook", True, "resolves to a private"),
        ("https://loopback.example.com/hook", False, "resolves to a loopback"),
    ],
)
async def test_a_target_that_turned_unsafe_is_refused_at_delivery_and_not_retried(
    hooks: httpx.AsyncClient,
    test_resources: Resources,
    session: AsyncSession,
    url: str,
    allow_insecure: bool,
    reason: str,
) -> None:
    """The URL passed its check at creation; since then it changed (here: in the database)
    or its name resolves elsewhere. The delivery checks again, after DNS."""
    account = await webhook_owner(hooks, test_resources)
    webhook, delivery_id = await owed(hooks, account, "https://hooks.example.com/taskpipe")
    await session.execute(
        update(WebhookEndpoint)
        .where(WebhookEndpoint.id == uuid.UUID(webhook["id"]))
        .values(url=url)
    )
    result = await send(
        test_resources, delivery_id, datetime.now(UTC), allow_insecure=allow_insecure
    )
    assert result.outcome is Sent.FAILED
    (attempt,) = (await log_of(hooks, account, webhook["id"]))["attempts"]
    assert attempt["outcome"] == "refused"
    assert reason in attempt["error"]


async def test_an_endpoint_failing_for_three_days_is_disabled_and_its_owner_mailed(
    hooks: httpx.AsyncClient,
    test_resources: Resources,
    receiver: WebhookReceiver,
    session: AsyncSession,
) -> None:
    account = await webhook_owner(hooks, test_resources)
    await verify_address(session, account)
    webhook, delivery_id = await owed(hooks, account, receiver.url(), receiver)
    receiver.fail_next(10)
    start = datetime.now(UTC)
    assert (await send(test_resources, delivery_id, start)).outcome is Sent.RETRY
    assert (
        await send(test_resources, delivery_id, start + timedelta(hours=20))
    ).outcome is Sent.RETRY
    # Events of later days keep failing; the first failure is what counts.
    await create_task(hooks, account, title="Another")
    newest = uuid.UUID((await deliveries(hooks, account, webhook["id"]))[0]["id"])
    just_before = start + DISABLE_AFTER - timedelta(seconds=1)
    await session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.id == newest)
        .values(retry_until=just_before + timedelta(hours=24))
    )
    assert (await send(test_resources, newest, just_before)).outcome is Sent.RETRY
    assert (await endpoint(session, webhook)).disabled_at is None
    result = await send(test_resources, newest, start + DISABLE_AFTER)
    assert result == SendResult(Sent.FAILED, endpoint_disabled=True)

    disabled = await endpoint(session, webhook)
    assert disabled.disabled_at == start + DISABLE_AFTER
    assert disabled.disabled_reason is not None
    assert "HTTP 500" in disabled.disabled_reason
    shown = (await hooks.get(f"/api/v1/webhooks/{webhook['id']}", headers=account.headers)).json()
    assert shown["enabled"] is False
    (mail,) = (
        await session.execute(
            select(OutboxJob).where(OutboxJob.task_name == JobName.SEND_WEBHOOK_DISABLED_EMAIL)
        )
    ).scalars()
    assert mail.kwargs["webhook_id"] == webhook["id"]
    quota = await session.get(MailQuota, account.email, populate_existing=True)
    assert quota is not None
    # Counted against the daily cap of the day it was sent (three days after the first).
    assert (quota.day, quota.mails_today) == ((start + DISABLE_AFTER).date(), 1)
    # The older delivery is given up without another attempt, and nothing new is owed.
    requests = len(receiver.requests)
    assert (await send(test_resources, delivery_id, start + DISABLE_AFTER)).outcome is Sent.NOTHING
    assert len(receiver.requests) == requests
    assert (
        await session.get(WebhookDelivery, delivery_id, populate_existing=True)
    ).status == "failed"  # type: ignore[union-attr]
    await create_task(hooks, account, title="Not owed")
    assert len(await deliveries(hooks, account, webhook["id"])) == 2


async def test_an_unverified_owner_is_not_mailed_when_the_endpoint_is_disabled(
    hooks: httpx.AsyncClient,
    test_resources: Resources,
    receiver: WebhookReceiver,
    session: AsyncSession,
) -> None:
    """Verified when the webhook was made, no longer when it is disabled (a changed address)."""
    account = await webhook_owner(hooks, test_resources)
    webhook, delivery_id = await owed(hooks, account, receiver.url(), receiver)
    await session.execute(
        update(User).where(User.email == account.email).values(email_verified_at=None)
    )
    receiver.fail_next(2)
    mails = await session.scalar(
        select(MailQuota.mails_today).where(MailQuota.address == account.email)
    )
    start = datetime.now(UTC)
    await send(test_resources, delivery_id, start)
    result = await send(test_resources, delivery_id, start + DISABLE_AFTER)
    assert result.endpoint_disabled
    jobs = await session.scalar(
        select(OutboxJob.id).where(OutboxJob.task_name == JobName.SEND_WEBHOOK_DISABLED_EMAIL)
    )
    assert jobs is None
    after = await session.scalar(
        select(MailQuota.mails_today)
        .where(MailQuota.address == account.email)
        .execution_options(populate_existing=True)
    )
    assert after == mails  # the verification link only
    enabled = await hooks.patch(
        f"/api/v1/webhooks/{webhook['id']}", json={"enabled": True}, headers=account.headers
    )
    assert enabled.json()["failing_since"] is None


async def test_during_a_rotation_both_secrets_sign(
    hooks: httpx.AsyncClient, test_resources: Resources, receiver: WebhookReceiver
) -> None:
    account = await webhook_owner(hooks, test_resources)
    webhook, delivery_id = await owed(hooks, account, receiver.url(), receiver)
    rotated = (
        await hooks.post(f"/api/v1/webhooks/{webhook['id']}/rotate-secret", headers=account.headers)
    ).json()
    now = datetime.now(UTC)
    await send(test_resources, delivery_id, now)
    (request,) = receiver.requests
    assert len(request.headers["webhook-signature"].split()) == 2
    for secret in (webhook["secret"], rotated["secret"]):
        Webhook(secret).verify(request.body, request.headers)


async def test_a_run_that_finds_another_attempting_or_an_old_round_sends_nothing(
    hooks: httpx.AsyncClient, test_resources: Resources, receiver: WebhookReceiver
) -> None:
    account = await webhook_owner(hooks, test_resources)
    webhook, delivery_id = await owed(hooks, account, receiver.url(), receiver)
    now = datetime.now(UTC)
    async with try_advisory_lock(test_resources.engine, f"webhook:{delivery_id}") as held:
        assert held
        assert (await send(test_resources, delivery_id, now)).outcome is Sent.WAIT
    assert (await send(test_resources, delivery_id, now, round_=2)).outcome is Sent.NOTHING
    assert (await send(test_resources, uuid.uuid4(), now)).outcome is Sent.NOTHING
    assert receiver.requests == []
    assert (await send(test_resources, delivery_id, now)).outcome is Sent.DELIVERED
    redelivered = await hooks.post(
        f"/api/v1/webhooks/{webhook['id']}/deliveries/{delivery_id}/redeliver",
        headers=account.headers,
    )
    assert redelivered.status_code == 202
    assert (await send(test_resources, delivery_id, now, round_=1)).outcome is Sent.NOTHING
    assert (await send(test_resources, delivery_id, now, round_=2)).outcome is Sent.DELIVERED
    first, again = receiver.requests
    assert first.headers["webhook-id"] == again.headers["webhook-id"]


async def test_the_deliveries_log_is_purged_after_its_retention(
    hooks: httpx.AsyncClient, test_resources: Resources, session: AsyncSession
) -> None:
    account = await webhook_owner(hooks, test_resources)
    webhook = await create_webhook(hooks, account)
    for index in range(5):
        await create_task(hooks, account, title=f"Task {index}")
    old = datetime.now(UTC) - DELIVERY_RETENTION - timedelta(minutes=1)
    ids = [uuid.UUID(d["id"]) for d in await deliveries(hooks, account, webhook["id"])]
    await session.execute(
        update(WebhookDelivery).where(WebhookDelivery.id.in_(ids[2:])).values(created_at=old)
    )
    purged = await purge_old_deliveries(
        test_resources.unit_of_work, now=datetime.now(UTC), batch_size=2
    )
    assert purged == 3
    assert [uuid.UUID(d["id"]) for d in await deliveries(hooks, account, webhook["id"])] == ids[:2]
