"""Delivering one webhook: at least once, one attempt at a time, every attempt recorded.

1. An advisory lock on the delivery, held on its own connection through the HTTP call, keeps
   two copies of its job (a message handed out again while the first run still goes on) from
   attempting at once. A killed worker's lock goes with its connection.
2. Nothing is sent for a delivery that is finished, of an earlier round (it was redelivered),
   whose endpoint is disabled or gone, or whose receiver asked to wait (Retry-After).
3. The attempt sends the stored body, signed anew with the endpoint's secrets (the previous
   one too during a rotation), under a `webhook-id` derived from the delivery's id: the same on
   every attempt and redelivery, so receivers de-duplicate. `deliver` resolves and checks the
   address again and never raises for what a receiver or the network does.
4. The result is recorded in a unit of work of its own: the attempt; the delivery delivered,
   failed for good (another 4xx, a refused address, a redirect, past its retry period) or due
   for a retry; the endpoint working, or failing since when. An endpoint failing for
   `DISABLE_AFTER` is disabled, and its owner mailed (a verified address, within its cap).

A worker killed between 3 and 4 leaves no record of its attempt: the job runs again and sends
the same body under the same id. That gap is what remains of at-least-once.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from common.config import Settings
from common.db.locks import try_advisory_lock
from common.db.uow import UnitOfWork
from common.jobs import JobName, Queue
from common.logging import get_logger
from common.models import DeliveryStatus, WebhookDelivery, WebhookEndpoint
from common.security.mail_quota import MailKind, reserve_mails
from common.users.repository import UserRepository
from common.webhooks.delivery import DeliveryResult, deliver
from common.webhooks.repository import WebhookRepository
from common.webhooks.signing import webhook_headers
from common.webhooks.targets import Resolver, system_resolver

log = get_logger(__name__)

DISABLE_AFTER = timedelta(days=3)
MAX_RETRY_AFTER = timedelta(hours=1)
"""A receiver's Retry-After is honoured up to this; a longer one would outlast the retries."""
MAX_RESPONSE_CHARACTERS = 2000


class Sent(StrEnum):
    DELIVERED = "delivered"
    RETRY = "retry"
    """The attempt failed; another is due (the job retries)."""
    FAILED = "failed"
    """The attempt failed for good."""
    WAIT = "wait"
    """No attempt: the receiver's Retry-After has not passed, or another run is attempting."""
    NOTHING = "nothing"
    """No attempt: delivered or given up already, redelivered since, or the endpoint is gone."""


@dataclass(frozen=True, slots=True)
class SendResult:
    outcome: Sent
    endpoint_disabled: bool = False

    @property
    def retry_later(self) -> bool:
        return self.outcome in (Sent.RETRY, Sent.WAIT)


def message_id(delivery_id: uuid.UUID) -> str:
    """The `webhook-id` of a delivery: stable across attempts, and free of `.`."""
    return f"msg_{delivery_id.hex}"


def signing_secrets(endpoint: WebhookEndpoint, now: datetime) -> list[str]:
    expires = endpoint.previous_secret_expires_at
    if endpoint.previous_secret and expires is not None and expires > now:
        return [endpoint.secret, endpoint.previous_secret]
    return [endpoint.secret]


class WebhookSender:
    def __init__(
        self,
        engine: AsyncEngine,
        unit_of_work: Callable[[], UnitOfWork],
        settings: Settings,
        resolver: Resolver = system_resolver,
    ) -> None:
        self._engine = engine
        self._unit_of_work = unit_of_work
        self._settings = settings
        self._resolver = resolver

    async def send(
        self, delivery_id: uuid.UUID, round_: int, *, now: datetime, retry_within: float
    ) -> SendResult:
        """Attempt the delivery once, as of `now`; `retry_within` (seconds) is the longest the
        job waits before its next run, which a planned retry reports as its time."""
        async with try_advisory_lock(self._engine, f"webhook:{delivery_id}") as locked:
            if not locked:
                return SendResult(Sent.WAIT)
            async with self._unit_of_work() as uow:
                found = await WebhookRepository(uow.session).to_send(delivery_id)
            if found is None:
                return SendResult(Sent.NOTHING)
            delivery, endpoint = found
            if delivery.round != round_ or delivery.status is not DeliveryStatus.PENDING:
                return SendResult(Sent.NOTHING)
            if endpoint.disabled_at is not None:
                await self._give_up(delivery_id, now)
                return SendResult(Sent.NOTHING)
            if delivery.not_before is not None and delivery.not_before > now:
                return SendResult(Sent.WAIT)
            body = delivery.payload.encode()
            result = await deliver(
                endpoint.url,
                body=body,
                headers=webhook_headers(
                    msg_id=message_id(delivery_id),
                    body=body,
                    secrets=signing_secrets(endpoint, now),
                ),
                allow_insecure=self._settings.webhooks_allow_insecure,
                resolver=self._resolver,
            )
            sent = await self._record(delivery, endpoint, result, now, retry_within)
        log.info(
            "webhook_attempted",
            delivery_id=str(delivery_id),
            outcome=sent.outcome.value,
            result=result.outcome.value,
            status_code=result.status_code,
            duration_ms=result.duration_ms,
        )
        return sent

    async def _give_up(self, delivery_id: uuid.UUID, now: datetime) -> None:
        async with self._unit_of_work() as uow:
            await WebhookRepository(uow.session).finish(delivery_id, DeliveryStatus.FAILED, now)

    async def _record(
        self,
        delivery: WebhookDelivery,
        endpoint: WebhookEndpoint,
        result: DeliveryResult,
        now: datetime,
        retry_within: float,
    ) -> SendResult:
        attempt: dict[str, Any] = {
            "attempted_at": now,
            "outcome": result.outcome.value,
            "status_code": result.status_code,
            "duration_ms": result.duration_ms,
            "error": result.error,
            "response_body": (result.response_body or "")[:MAX_RESPONSE_CHARACTERS] or None,
        }
        finished = {"status": DeliveryStatus.FAILED, "finished_at": now, "not_before": None}
        async with self._unit_of_work() as uow:
            webhooks = WebhookRepository(uow.session)
            if result.delivered:
                await webhooks.record_attempt(
                    delivery, attempt, {**finished, "status": DeliveryStatus.DELIVERED}
                )
                await webhooks.mark_working(endpoint.id)
                return SendResult(Sent.DELIVERED)
            await webhooks.mark_failing(endpoint.id, now)
            disabled = await webhooks.disable_if_failing_since(
                endpoint.id,
                before=now - DISABLE_AFTER,
                now=now,
                reason=_disabled_reason(endpoint, result),
            )
            if disabled:
                await self._tell_owner(uow, endpoint, now)
            if disabled or not result.retryable or now >= delivery.retry_until:
                await webhooks.record_attempt(delivery, attempt, finished)
                return SendResult(Sent.FAILED, endpoint_disabled=disabled)
            wait = min(timedelta(seconds=result.retry_after_seconds or 0), MAX_RETRY_AFTER)
            not_before = now + wait if wait else None
            attempt["next_attempt_at"] = now + max(wait, timedelta(seconds=retry_within))
            await webhooks.record_attempt(delivery, attempt, {"not_before": not_before})
            return SendResult(Sent.RETRY)

    async def _tell_owner(self, uow: UnitOfWork, endpoint: WebhookEndpoint, now: datetime) -> None:
        """Mail the owner that their endpoint is off: a verified address only (anyone can
        register with anyone's address), and within its daily allowance of mails."""
        log.warning("webhook_endpoint_disabled", webhook_id=str(endpoint.id))
        owner = await UserRepository(uow.session).get(endpoint.user_id)
        if owner is None or owner.email_verified_at is None:
            return
        granted = await reserve_mails(
            uow.session, self._settings, [owner.email], now=now, kind=MailKind.NOTICE
        )
        if granted:
            uow.enqueue(
                JobName.SEND_WEBHOOK_DISABLED_EMAIL,
                Queue.EMAIL,
                webhook_id=str(endpoint.id),
                disabled_at=now.isoformat(),
            )


def _disabled_reason(endpoint: WebhookEndpoint, result: DeliveryResult) -> str:
    since = endpoint.failing_since
    when = f"since {since:%Y-%m-%d %H:%M} UTC" if since else f"for {DISABLE_AFTER.days} days"
    return f"every delivery failed {when}; the last: {result.error or result.outcome.value}"[:500]
