"""Webhooks: a user's endpoints, the messages owed to each, and every attempt to deliver one."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from common.models.base import Base, CreatedAt, Timestamps, UUIDPrimaryKey, string_enum


class WebhookEndpoint(UUIDPrimaryKey, Timestamps, Base):
    """Where a user wants their events POSTed, signed with `secret` (Standard Webhooks).

    The secret is kept as given to the user: signing needs it, a hash would not do. After a
    rotation the previous one keeps signing beside it until `previous_secret_expires_at`.
    """

    __tablename__ = "webhook_endpoints"
    __table_args__ = (Index(None, "user_id", "created_at", "id"),)

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    url: Mapped[str] = mapped_column(String(2048))
    description: Mapped[str | None] = mapped_column(String(200))
    events: Mapped[list[str]] = mapped_column(ARRAY(String(40)))
    secret: Mapped[str] = mapped_column(String(100))
    previous_secret: Mapped[str | None] = mapped_column(String(100))
    previous_secret_expires_at: Mapped[datetime | None]
    failing_since: Mapped[datetime | None]
    """The first failed attempt since the last delivered one (None while it works)."""
    disabled_at: Mapped[datetime | None]
    disabled_reason: Mapped[str | None] = mapped_column(String(500))


class DeliveryStatus(enum.StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"


class WebhookDelivery(UUIDPrimaryKey, CreatedAt, Base):
    """One event owed to one endpoint, written in the transaction of the change it reports.

    `payload` holds the exact body, so every attempt (and a redelivery) sends the same bytes
    under the same `webhook-id`. `round` counts redeliveries: a job of an earlier round that
    wakes up later does nothing.
    """

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        Index(None, "user_id", "endpoint_id", "created_at", "id"),
        Index(None, "created_at"),
    )

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    endpoint_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("webhook_endpoints.id", ondelete="CASCADE")
    )
    event: Mapped[str] = mapped_column(String(40))
    payload: Mapped[str] = mapped_column(Text)
    status: Mapped[DeliveryStatus] = mapped_column(
        string_enum(DeliveryStatus, "webhook_delivery_status", 20),
        server_default=DeliveryStatus.PENDING.value,
    )
    attempts: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    round: Mapped[int] = mapped_column(Integer, server_default=text("1"))
    retry_until: Mapped[datetime]
    """No retry starts after this (about a day after the event, or after a redelivery)."""
    not_before: Mapped[datetime | None]
    """The receiver's Retry-After: no attempt before it."""
    finished_at: Mapped[datetime | None]


class WebhookAttempt(UUIDPrimaryKey, Base):
    """One HTTP attempt of a delivery, as its owner sees it in the deliveries log."""

    __tablename__ = "webhook_attempts"
    __table_args__ = (Index(None, "user_id", "delivery_id", "attempted_at"),)

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    delivery_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("webhook_deliveries.id", ondelete="CASCADE")
    )
    attempted_at: Mapped[datetime]
    outcome: Mapped[str] = mapped_column(String(20))
    status_code: Mapped[int | None] = mapped_column(Integer)
    duration_ms: Mapped[int] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(String(500))
    response_body: Mapped[str | None] = mapped_column(Text)
    """The start of a failed answer's body (a receiver's own explanation)."""
    next_attempt_at: Mapped[datetime | None]
    """When the next attempt is due at the latest, if one is planned."""
