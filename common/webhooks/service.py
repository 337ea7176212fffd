"""Webhook endpoints as their owner manages them: create, change, rotate the secret, test,
read the deliveries log and redeliver.

Only a verified account creates webhooks: each makes this server POST to a host of the
user's choosing, up to 10 endpoints and some 25 attempts per event, which a throwaway account
could otherwise aim at someone else's server.

A URL is checked (`targets.check_target`: https, and every address it resolves to public)
before anything touches the database, so no pooled connection waits for DNS; the worker checks
it again at every delivery. The number of endpoints per user is capped, under a per-user lock
so two racing creates cannot both take the last place.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from common.config import Settings
from common.db.uow import UnitOfWork
from common.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from common.users.repository import UserRepository
from common.webhooks.errors import (
    AddressNotVerified,
    DeliveryNotFound,
    WebhookDisabled,
    WebhookLimitReached,
    WebhookNotFound,
)
from common.webhooks.events import (
    RETRY_PERIOD,
    EventType,
    enqueue_delivery,
    render_body,
    subscriptions,
)
from common.webhooks.repository import WebhookRepository
from common.webhooks.signing import generate_secret
from common.webhooks.targets import Resolver, check_target, system_resolver

SECRET_GRACE = timedelta(hours=24)
"""After a rotation the previous secret keeps signing this long, beside the new one, so the
receiver can switch at its own pace."""
DISABLED_BY_OWNER = "disabled by its owner"

Deliveries = list[tuple[WebhookDelivery, list[WebhookAttempt]]]


class WebhookService:
    def __init__(
        self, uow: UnitOfWork, settings: Settings, resolver: Resolver = system_resolver
    ) -> None:
        self._uow = uow
        self._settings = settings
        self._resolver = resolver
        self._webhooks = WebhookRepository(uow.session)

    async def create(
        self, user_id: uuid.UUID, *, url: str, events: Sequence[str], description: str | None
    ) -> WebhookEndpoint:
        """A new endpoint with a new secret (the caller shows it once)."""
        subscribed = subscriptions(events)
        checked = await self._checked(url)
        owner = await UserRepository(self._uow.session).get(user_id)
        if owner is None or owner.email_verified_at is None:
            raise AddressNotVerified()
        await self._webhooks.lock_owner(user_id)
        if await self._webhooks.count(user_id) >= self._settings.webhooks_per_user:
            raise WebhookLimitReached(self._settings.webhooks_per_user)
        endpoint = WebhookEndpoint(
            id=uuid.uuid4(),
            user_id=user_id,
            url=checked,
            description=description or None,
            events=subscribed,
            secret=generate_secret(),
        )
        await self._webhooks.add(endpoint)
        return endpoint

    async def list(self, user_id: uuid.UUID) -> Sequence[WebhookEndpoint]:
        return await self._webhooks.owned_by(user_id)

    async def get(
        self, user_id: uuid.UUID, endpoint_id: uuid.UUID, *, for_update: bool = False
    ) -> WebhookEndpoint:
        endpoint = await self._webhooks.get(user_id, endpoint_id, for_update=for_update)
        if endpoint is None:
            raise WebhookNotFound()
        return endpoint

    async def update(
        self, user_id: uuid.UUID, endpoint_id: uuid.UUID, changes: dict[str, Any]
    ) -> WebhookEndpoint:
        """Change `url`, `events`, `description`; `enabled` turns deliveries off or back on
        (which also forgets the failures that disabled it)."""
        changes = dict(changes)
        if "url" in changes:
            changes["url"] = await self._checked(changes["url"])
        if "events" in changes:
            changes["events"] = subscriptions(changes["events"])
        if "description" in changes:
            changes["description"] = changes["description"] or None
        enabled = changes.pop("enabled", None)
        endpoint = await self.get(user_id, endpoint_id, for_update=True)
        for name, value in changes.items():
            setattr(endpoint, name, value)
        if enabled is True and endpoint.disabled_at is not None:
            endpoint.disabled_at = endpoint.disabled_reason = endpoint.failing_since = None
        elif enabled is False and endpoint.disabled_at is None:
            endpoint.disabled_at = datetime.now(UTC)
            endpoint.disabled_reason = DISABLED_BY_OWNER
        return await self._saved(endpoint)

    async def delete(self, user_id: uuid.UUID, endpoint_id: uuid.UUID) -> None:
        """The endpoint and its deliveries log go; pending deliveries are not sent."""
        if not await self._webhooks.delete(user_id, endpoint_id):
            raise WebhookNotFound()

    async def rotate_secret(self, user_id: uuid.UUID, endpoint_id: uuid.UUID) -> WebhookEndpoint:
        """A new secret; the current one keeps signing beside it for `SECRET_GRACE`."""
        endpoint = await self.get(user_id, endpoint_id, for_update=True)
        endpoint.previous_secret = endpoint.secret
        endpoint.previous_secret_expires_at = datetime.now(UTC) + SECRET_GRACE
        endpoint.secret = generate_secret()
        return await self._saved(endpoint)

    async def send_test(self, user_id: uuid.UUID, endpoint_id: uuid.UUID) -> Deliveries:
        """A `webhook.test` event for this endpoint alone, delivered like any other."""
        endpoint = await self._enabled(user_id, endpoint_id)
        now = datetime.now(UTC)
        delivery_id = uuid.uuid4()
        data = {"webhook_id": str(endpoint.id), "message": "A test event from Taskpipe"}
        await self._webhooks.add_deliveries(
            [
                {
                    "id": delivery_id,
                    "user_id": user_id,
                    "endpoint_id": endpoint.id,
                    "event": EventType.TEST.value,
                    "payload": render_body(EventType.TEST, data, now),
                    "retry_until": now + RETRY_PERIOD,
                    "created_at": now,
                }
            ]
        )
        enqueue_delivery(self._uow, delivery_id, round=1)
        return await self._with_attempts(
            user_id, [await self._delivery(user_id, endpoint.id, delivery_id)]
        )

    async def deliveries(
        self, user_id: uuid.UUID, endpoint_id: uuid.UUID, *, page: int, limit: int
    ) -> Deliveries:
        """The endpoint's deliveries, newest first, each with its attempts."""
        await self.get(user_id, endpoint_id)
        found = await self._webhooks.deliveries(
            user_id, endpoint_id, limit=limit, offset=(page - 1) * limit
        )
        return await self._with_attempts(user_id, found)

    async def redeliver(
        self, user_id: uuid.UUID, endpoint_id: uuid.UUID, delivery_id: uuid.UUID
    ) -> Deliveries:
        """Deliver again, under the same `webhook-id`, with a day of retries of its own."""
        await self._enabled(user_id, endpoint_id)
        await self._delivery(user_id, endpoint_id, delivery_id)
        round_ = await self._webhooks.restart(
            delivery_id, retry_until=datetime.now(UTC) + RETRY_PERIOD
        )
        enqueue_delivery(self._uow, delivery_id, round=round_)
        delivery = await self._delivery(user_id, endpoint_id, delivery_id)
        return await self._with_attempts(user_id, [delivery])

    # Helpers ---------------------------------------------------------------------------

    async def _checked(self, url: str) -> str:
        target = await check_target(
            url, allow_insecure=self._settings.webhooks_allow_insecure, resolver=self._resolver
        )
        return target.url

    async def _enabled(self, user_id: uuid.UUID, endpoint_id: uuid.UUID) -> WebhookEndpoint:
        endpoint = await self.get(user_id, endpoint_id)
        if endpoint.disabled_at is not None:
            raise WebhookDisabled()
        return endpoint

    async def _delivery(
        self, user_id: uuid.UUID, endpoint_id: uuid.UUID, delivery_id: uuid.UUID
    ) -> WebhookDelivery:
        delivery = await self._webhooks.delivery(user_id, endpoint_id, delivery_id)
        if delivery is None:
            raise DeliveryNotFound()
        await self._uow.session.refresh(delivery)
        return delivery

    async def _with_attempts(
        self, user_id: uuid.UUID, deliveries: Sequence[WebhookDelivery]
    ) -> Deliveries:
        attempts: dict[uuid.UUID, list[WebhookAttempt]] = defaultdict(list)
        if deliveries:
            for attempt in await self._webhooks.attempts(user_id, [d.id for d in deliveries]):
                attempts[attempt.delivery_id].append(attempt)
        return [(delivery, attempts[delivery.id]) for delivery in deliveries]

    async def _saved(self, endpoint: WebhookEndpoint) -> WebhookEndpoint:
        await self._uow.session.flush()
        await self._uow.session.refresh(endpoint)
        return endpoint
