"""Deliver a mail at most once per idempotency key (on top of Celery's at-least-once)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from common.config import Settings
from common.logging import get_logger
from common.models import SentEmail
from worker.mail.render import RenderedMail
from worker.mail.sender import build_message, send_mail

log = get_logger(__name__)


async def already_sent(session: AsyncSession, idempotency_key: str) -> bool:
    return await session.get(SentEmail, idempotency_key) is not None


async def deliver_once(
    session: AsyncSession,
    settings: Settings,
    *,
    idempotency_key: str,
    to: str,
    mail: RenderedMail,
) -> bool:
    """Send unless this key was sent before; record it right after SMTP accepted the mail.

    A crash between the SMTP hand-off and the record can still repeat one mail; that window
    is a few milliseconds, where a lost mail would be forever.
    """
    if await already_sent(session, idempotency_key):
        log.info("mail_already_sent", idempotency_key=idempotency_key)
        return False
    await session.commit()  # do not hold a connection or a transaction across SMTP
    await send_mail(settings, build_message(settings, to, mail, idempotency_key))
    await session.execute(
        insert(SentEmail)
        .values(idempotency_key=idempotency_key, sent_at=datetime.now(UTC))
        .on_conflict_do_nothing()
    )
    await session.commit()
    log.info("mail_sent", idempotency_key=idempotency_key, subject=mail.subject)
    return True
