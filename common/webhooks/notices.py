"""The mail that tells an owner their webhook was disabled, as the mail job assembles it."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

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


async def disabled_notice(
    session: AsyncSession, webhook_id: uuid.UUID, disabled_at: datetime
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
    )
