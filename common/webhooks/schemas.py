"""Webhook representations: an endpoint (its secret only when it is made or rotated) and its
deliveries log."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field

from common.models import DeliveryStatus, WebhookAttempt, WebhookDelivery, WebhookEndpoint


class WebhookOut(BaseModel):
    id: uuid.UUID = Field(examples=["3f8e2c1a-9b7d-4e6f-8a5b-1c2d3e4f5a6b"])
    url: str = Field(examples=["https://hooks.example.com/taskpipe"])
    description: str | None = Field(examples=["Sync to our CRM"])
    events: list[str] = Field(examples=[["task.completed", "category.*"]])
    enabled: bool = Field(description="Disabled endpoints are sent nothing", examples=[True])
    disabled_at: datetime | None = Field(examples=[None])
    disabled_reason: str | None = Field(
        description="Why it was disabled: by you, or after 3 days of failed deliveries",
        examples=[None],
    )
    failing_since: datetime | None = Field(
        description="The first failed attempt since the last delivered one; 3 days of it "
        "disable the endpoint",
        examples=[None],
    )
    previous_secret_expires_at: datetime | None = Field(
        description="After a rotation the previous secret signs too, until then", examples=[None]
    )
    created_at: datetime = Field(examples=["2026-11-20T09:12:44Z"])
    updated_at: datetime = Field(examples=["2026-11-24T16:03:10Z"])


class WebhookWithSecret(WebhookOut):
    secret: str = Field(
        description="The signing secret (Standard Webhooks), shown this once: keep it",
        examples=["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"],
    )


class WebhookList(BaseModel):
    items: list[WebhookOut]
    total: int = Field(examples=[1])


class AttemptOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    attempted_at: datetime = Field(examples=["2026-11-24T16:03:10Z"])
    outcome: str = Field(
        description="`delivered`, `http_error`, `redirect`, `timeout`, `network_error` or "
        "`refused` (the address is not a public one)",
        examples=["http_error"],
    )
    status_code: int | None = Field(examples=[503])
    duration_ms: int = Field(examples=[212])
    error: str | None = Field(examples=["HTTP 503 Service Unavailable"])
    response_body: str | None = Field(
        description="The start of a failed answer's body", examples=["down for maintenance"]
    )
    next_attempt_at: datetime | None = Field(
        description="The latest time the next attempt is due, when one is planned",
        examples=["2026-11-24T16:03:20Z"],
    )


class DeliveryOut(BaseModel):
    id: uuid.UUID = Field(
        description="Also the `webhook-id` header, as `msg_<id without dashes>`",
        examples=["9a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"],
    )
    event: str = Field(examples=["task.completed"])
    status: DeliveryStatus = Field(examples=["pending"])
    payload: dict[str, Any] = Field(description="The body, as sent")
    created_at: datetime = Field(examples=["2026-11-24T16:03:09Z"])
    retry_until: datetime = Field(description="No retry starts after this")
    finished_at: datetime | None = Field(examples=[None])
    attempts: list[AttemptOut]


class DeliveryPage(BaseModel):
    items: list[DeliveryOut]
    page: int = Field(examples=[1])
    limit: int = Field(examples=[20])


def webhook_out(endpoint: WebhookEndpoint) -> WebhookOut:
    return WebhookOut(
        id=endpoint.id,
        url=endpoint.url,
        description=endpoint.description,
        events=endpoint.events,
        enabled=endpoint.disabled_at is None,
        disabled_at=endpoint.disabled_at,
        disabled_reason=endpoint.disabled_reason,
        failing_since=endpoint.failing_since,
        previous_secret_expires_at=endpoint.previous_secret_expires_at,
        created_at=endpoint.created_at,
        updated_at=endpoint.updated_at,
    )


def with_secret(endpoint: WebhookEndpoint) -> WebhookWithSecret:
    return WebhookWithSecret(**webhook_out(endpoint).model_dump(), secret=endpoint.secret)


def delivery_out(delivery: WebhookDelivery, attempts: Sequence[WebhookAttempt]) -> DeliveryOut:
    return DeliveryOut(
        id=delivery.id,
        event=delivery.event,
        status=delivery.status,
        payload=orjson.loads(delivery.payload),
        created_at=delivery.created_at,
        retry_until=delivery.retry_until,
        finished_at=delivery.finished_at,
        attempts=[AttemptOut.model_validate(attempt) for attempt in attempts],
    )
