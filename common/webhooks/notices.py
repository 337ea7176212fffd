"""The notice that tells an owner their webhook was disabled, read when its mail job runs
(`worker.mail.messages` renders it)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from common.config import Settings
from common.models import WebhookEndpoint
from common.users.repository import UserRepository


@dataclass(frozen=True, slots=True)
class DisabledNotice:
    address: str
    full_name: str
    webhook_id: uuid.UUID
    url: str
    reason: str
    disabled_at: datetime
    link: str
    """Where the owner reads the endpoint (and enables it again)."""


async def disabled_notice(
    session: AsyncSession, settings: Settings, webhook_id: uuid.UUID, disabled_at: datetime
) -> DisabledNotice | None:
    """The notice, if the endpoint is still the one disabled then (not deleted, not enabled
    again) and its owner's address is verified; None otherwise (nothing to send)."""
    endpoint = await session.get(WebhookEndpoint, webhook_id)
    if endpoint is None or endpoint.disabled_at != disabled_at:
        return None
    owner = await UserRepository(session).get(endpoint.user_id)
    if owner is None or owner.email_verified_at is None:
        return None
    return DisabledNotice(
        address=owner.email,
        full_name=owner.full_name,
        webhook_id=endpoint.id,
        url=endpoint.url,
        reason=endpoint.disabled_reason or "",
        disabled_at=disabled_at,
        link=f"{settings.public_url}/api/v1/webhooks/{endpoint.id}",
    )
