"""SQL for webhooks: endpoints, the deliveries owed to them and the attempts made."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, func, insert, literal, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from common.models import (
    DeliveryStatus,
    Task,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
)
from common.tasks.views import VIEW_COLUMNS, TaskRow

_ACTIVE_SUBSCRIPTIONS = select(WebhookEndpoint.id, WebhookEndpoint.events).where(
    WebhookEndpoint.user_id == bindparam("user_id"), WebhookEndpoint.disabled_at.is_(None)
)


class WebhookRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    # Endpoints ----------------------------------------------------------------------------

    async def lock_owner(self, user_id: uuid.UUID) -> None:
        """Serialise one user's endpoint creations until the transaction ends (the cap)."""
        key = func.hashtextextended(literal("webhooks:") + str(user_id), 0)
        await self._session.execute(select(func.pg_advisory_xact_lock(key)))

    async def count(self, user_id: uuid.UUID) -> int:
        statement = select(func.count()).where(WebhookEndpoint.user_id == user_id)
        return int((await self._session.execute(statement)).scalar_one())

    async def add(self, endpoint: WebhookEndpoint) -> None:
        self._session.add(endpoint)
        await self._session.flush()
        await self._session.refresh(endpoint)

    async def get(
        self, user_id: uuid.UUID, endpoint_id: uuid.UUID, *, for_update: bool = False
    ) -> WebhookEndpoint | None:
        statement = select(WebhookEndpoint).where(
            WebhookEndpoint.id == endpoint_id, WebhookEndpoint.user_id == user_id
        )
        if for_update:
            statement = statement.with_for_update()
        return (await self._session.execute(statement)).scalar_one_or_none()

    async def owned_by(self, user_id: uuid.UUID) -> Sequence[WebhookEndpoint]:
        statement = (
            select(WebhookEndpoint)
            .where(WebhookEndpoint.user_id == user_id)
            .order_by(WebhookEndpoint.created_at, WebhookEndpoint.id)
        )
        return (await self._session.execute(statement)).scalars().all()

    async def delete(self, user_id: uuid.UUID, endpoint_id: uuid.UUID) -> bool:
        statement = (
            delete(WebhookEndpoint)
            .where(WebhookEndpoint.id == endpoint_id, WebhookEndpoint.user_id == user_id)
            .returning(WebhookEndpoint.id)
        )
        return (await self._session.execute(statement)).first() is not None

    async def active_subscriptions(
        self, user_ids: Collection[uuid.UUID]
    ) -> list[tuple[uuid.UUID, uuid.UUID, list[str]]]:
        """(endpoint id, owner, events) of the enabled endpoints of these users. On every
        write's path: a statement built once, run on the connection without the ORM layer."""
        connection = await self._session.connection()
        found: list[tuple[uuid.UUID, uuid.UUID, list[str]]] = []
        for user_id in user_ids:
            rows = await connection.execute(_ACTIVE_SUBSCRIPTIONS, {"user_id": user_id})
            found.extend((row.id, user_id, row.events) for row in rows)
        return found

    async def mark_failing(self, endpoint_id: uuid.UUID, now: datetime) -> None:
        await self._session.execute(
            update(WebhookEndpoint)
            .where(WebhookEndpoint.id == endpoint_id, WebhookEndpoint.failing_since.is_(None))
            .values(failing_since=now)
        )

    async def mark_working(self, endpoint_id: uuid.UUID) -> None:
        await self._session.execute(
            update(WebhookEndpoint)
            .where(WebhookEndpoint.id == endpoint_id, WebhookEndpoint.failing_since.is_not(None))
            .values(failing_since=None)
        )

    async def disable_if_failing_since(
        self, endpoint_id: uuid.UUID, *, before: datetime, now: datetime, reason: str
    ) -> bool:
        """Disable the endpoint if it has been failing since `before` or earlier; True for the
        one caller that did (racing workers cannot both)."""
        statement = (
            update(WebhookEndpoint)
            .where(
                WebhookEndpoint.id == endpoint_id,
                WebhookEndpoint.disabled_at.is_(None),
                WebhookEndpoint.failing_since <= before,
            )
            .values(disabled_at=now, disabled_reason=reason)
            .returning(WebhookEndpoint.id)
        )
        return (await self._session.execute(statement)).first() is not None

    # Deliveries -----------------------------------------------------------------------------

    async def tasks_as_shown(self, task_ids: Collection[uuid.UUID]) -> Sequence[TaskRow]:
        statement = select(*VIEW_COLUMNS).where(Task.id.in_(task_ids), Task.deleted_at.is_(None))
        return (await self._session.execute(statement)).all()

    async def add_deliveries(self, rows: Sequence[dict[str, Any]]) -> None:
        await self._session.execute(insert(WebhookDelivery), list(rows))

    async def deliveries(
        self, user_id: uuid.UUID, endpoint_id: uuid.UUID, *, limit: int, offset: int
    ) -> Sequence[WebhookDelivery]:
        """Newest first."""
        statement = (
            select(WebhookDelivery)
            .where(WebhookDelivery.user_id == user_id, WebhookDelivery.endpoint_id == endpoint_id)
            .order_by(WebhookDelivery.created_at.desc(), WebhookDelivery.id.desc())
            .limit(limit)
            .offset(offset)
        )
        return (await self._session.execute(statement)).scalars().all()

    async def attempts(
        self, user_id: uuid.UUID, delivery_ids: Collection[uuid.UUID]
    ) -> Sequence[WebhookAttempt]:
        """In the order they were made."""
        statement = (
            select(WebhookAttempt)
            .where(WebhookAttempt.user_id == user_id, WebhookAttempt.delivery_id.in_(delivery_ids))
            .order_by(WebhookAttempt.attempted_at, WebhookAttempt.id)
        )
        return (await self._session.execute(statement)).scalars().all()

    async def delivery(
        self, user_id: uuid.UUID, endpoint_id: uuid.UUID, delivery_id: uuid.UUID
    ) -> WebhookDelivery | None:
        statement = select(WebhookDelivery).where(
            WebhookDelivery.id == delivery_id,
            WebhookDelivery.user_id == user_id,
            WebhookDelivery.endpoint_id == endpoint_id,
        )
        return (await self._session.execute(statement)).scalar_one_or_none()

    async def restart(self, delivery_id: uuid.UUID, *, retry_until: datetime) -> int:
        """Deliver again from scratch (a redelivery): the next round; its number."""
        statement = (
            update(WebhookDelivery)
            .where(WebhookDelivery.id == delivery_id)
            .values(
                status=DeliveryStatus.PENDING,
                round=WebhookDelivery.round + 1,
                retry_until=retry_until,
                not_before=None,
                finished_at=None,
            )
            .returning(WebhookDelivery.round)
        )
        return int((await self._session.execute(statement)).scalar_one())

    async def to_send(
        self, delivery_id: uuid.UUID
    ) -> tuple[WebhookDelivery, WebhookEndpoint] | None:
        statement = (
            select(WebhookDelivery, WebhookEndpoint)
            .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
            .where(WebhookDelivery.id == delivery_id)
        )
        row = (await self._session.execute(statement)).first()
        return None if row is None else (row[0], row[1])

    async def record_attempt(
        self, delivery: WebhookDelivery, attempt: dict[str, Any], outcome: dict[str, Any]
    ) -> None:
        """The attempt, and what it made of its delivery (`outcome`: the columns to set)."""
        await self._session.execute(
            insert(WebhookAttempt).values(
                id=uuid.uuid4(), user_id=delivery.user_id, delivery_id=delivery.id, **attempt
            )
        )
        delivery_id = delivery.id
        await self._session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.id == delivery_id)
            .values(attempts=WebhookDelivery.attempts + 1, **outcome)
        )

    async def finish(self, delivery_id: uuid.UUID, status: DeliveryStatus, now: datetime) -> None:
        await self._session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.id == delivery_id)
            .values(status=status, finished_at=now, not_before=None)
        )

    async def purge_deliveries(self, *, before: datetime, limit: int) -> int:
        """Delete up to `limit` deliveries made before `before`, with their attempts."""
        oldest = (
            select(WebhookDelivery.id)
            .where(WebhookDelivery.created_at < before)
            .order_by(WebhookDelivery.created_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        statement = delete(WebhookDelivery).where(WebhookDelivery.id.in_(oldest.scalar_subquery()))
        result = await self._session.execute(statement.returning(WebhookDelivery.id))
        return len(result.all())
