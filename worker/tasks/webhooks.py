"""Webhook jobs: one delivery attempt (on the `webhooks` queue: a slow receiver never delays a
mail), the mail telling an owner their endpoint was disabled, and the deliveries log's purge.

Retries follow `WEBHOOK_RETRY` through the job policy: a short wait is a Celery countdown, a
long one waits in the outbox with a not-before time, never in the broker. The first retry comes
within 10 s, then the waits double up to 2 h; the delivery's own retry period (a day from its
event) ends them, so a failing receiver is tried about 25 times over about 24 h.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from celery import current_task

from common import jobstats
from common.jobs import JobName
from common.webhooks.notices import disabled_notice
from common.webhooks.retention import purge_old_deliveries
from common.webhooks.sending import Sent, WebhookSender
from worker.mail.delivery import deliver_once
from worker.mail.messages import webhook_disabled_mail
from worker.mail.tasks import mail_task
from worker.policy import RetryPolicy, job
from worker.runtime import WorkerRuntime
from worker.tasks.arguments import as_of


class RetryDelivery(Exception):
    """The delivery is due again later (a failed attempt, or a receiver that asked to wait)."""


WEBHOOK_RETRY = RetryPolicy(
    retry_on=(RetryDelivery,),
    max_retries=48,
    backoff_seconds=10,
    backoff_max_seconds=2 * 3600,
)
"""Only a bound: the delivery's retry period ends its retries first (48 waits of at least half
their step add up to more than a day and a half)."""


def retry_within(retries: int) -> float:
    """The longest the policy waits before retry number `retries` + 1 (its "equal jitter"
    waits between half of the step and the step)."""
    return float(min(WEBHOOK_RETRY.backoff_max_seconds, WEBHOOK_RETRY.backoff_seconds * 2**retries))


@job(JobName.DELIVER_WEBHOOK, soft_time_limit=30, time_limit=40, policy=WEBHOOK_RETRY)
async def deliver_webhook(runtime: WorkerRuntime, delivery_id: str, round: int = 1) -> str:
    """One attempt; 10 s for the receiver, the rest of the time limit for PostgreSQL."""
    sender = WebhookSender(runtime.engine, runtime.unit_of_work, runtime.settings)
    result = await sender.send(
        uuid.UUID(delivery_id),
        round,
        now=datetime.now(UTC),
        retry_within=retry_within(current_task.request.retries),
    )
    if result.outcome in (Sent.DELIVERED, Sent.RETRY, Sent.FAILED):
        await jobstats.record(runtime.redis, "webhooks", {result.outcome.value: 1})
    if result.endpoint_disabled:
        await jobstats.record(runtime.redis, "jobs", {"webhook_endpoint_disabled": 1})
    if result.retry_later:
        raise RetryDelivery(f"delivery {delivery_id}: {result.outcome.value}")
    return result.outcome.value


@mail_task(JobName.SEND_WEBHOOK_DISABLED_EMAIL)
async def send_webhook_disabled(runtime: WorkerRuntime, webhook_id: str, disabled_at: str) -> bool:
    async with runtime.unit_of_work() as uow:
        notice = await disabled_notice(
            uow.session,
            runtime.settings,
            uuid.UUID(webhook_id),
            datetime.fromisoformat(disabled_at),
        )
    return notice is not None and await deliver_once(runtime, webhook_disabled_mail(notice))


@job(JobName.PURGE_WEBHOOK_DELIVERIES, soft_time_limit=150, time_limit=180)
async def purge_webhook_deliveries(runtime: WorkerRuntime, now: str | None = None) -> int:
    return await purge_old_deliveries(
        runtime.unit_of_work, now=as_of(now), batch_size=runtime.settings.purge_batch_size
    )
