"""Webhook request bodies (responses are `common.webhooks.schemas`, re-exported here)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, Field

from api.schemas.base import RequestModel, not_null, refuse_null
from common.models.text import single_line
from common.webhooks.events import SUBSCRIBABLE
from common.webhooks.schemas import (
    DeliveryOut,
    DeliveryPage,
    WebhookList,
    WebhookOut,
    WebhookWithSecret,
)
from common.webhooks.targets import MAX_URL_LENGTH

__all__ = [
    "DeliveryOut",
    "DeliveryPage",
    "WebhookCreate",
    "WebhookList",
    "WebhookOut",
    "WebhookUpdate",
    "WebhookWithSecret",
]

Url = Annotated[
    str,
    Field(
        min_length=1,
        max_length=MAX_URL_LENGTH,
        description="https, resolving to public addresses only (checked now and at every "
        "delivery); redirects are not followed",
        examples=["https://hooks.example.com/taskpipe"],
    ),
]
Events = Annotated[
    list[Annotated[str, Field(max_length=40)]],
    Field(
        min_length=1,
        max_length=len(SUBSCRIBABLE),
        description=f"Any of {', '.join(f'`{name}`' for name in SUBSCRIBABLE)}",
        examples=[["task.completed", "category.*"]],
    ),
]
Description = Annotated[
    str, Field(max_length=200, examples=["Sync to our CRM"]), AfterValidator(single_line)
]


class WebhookCreate(RequestModel):
    url: Url
    events: Events
    description: Description | None = None


class WebhookUpdate(RequestModel):
    """Only the fields sent change; `description` may be set to null, the others may not."""

    url: Url | None = Field(default=None, json_schema_extra=not_null)
    events: Events | None = Field(default=None, json_schema_extra=not_null)
    description: Description | None = None
    enabled: Annotated[bool, Field(strict=True)] | None = Field(
        default=None,
        description="false stops deliveries; true resumes them (and forgets past failures)",
        json_schema_extra=not_null,
    )

    _refuse_null = refuse_null("url", "events", "enabled")

    def changes(self) -> dict[str, Any]:
        return self.model_dump(exclude_unset=True)
