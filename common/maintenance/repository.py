"""SQL for the purge: which rows are past their use, and deleting them a batch at a time."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, delete, or_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from common.models import (
    AccountEvent,
    AccountExport,
    ActionToken,
    ExportStatus,
    IdempotencyKey,
    MailQuota,
    PersonalAccessToken,
    RefreshToken,
    RefreshTokenFamily,
    SentEmail,
    Task,
)

SENT_EMAIL_RETENTION = timedelta(days=30)


@dataclass(frozen=True, slots=True)
class Expired:
    """The rows of one table that nobody can see or use any more, by primary key."""

    keys: tuple[InstrumentedAttribute[Any], ...]
    condition: ColumnElement[bool]

    @property
    def table(self) -> str:
        return str(self.keys[0].class_.__tablename__)


def expired_rows(
    now: datetime,
    *,
    retention: timedelta,
    idempotency_retention: timedelta,
    activity_retention: timedelta,
) -> list[Expired]:
    """What the purge deletes, in this order; category links go with their tasks. A mail
    quota whose day and hour are over counts nothing any more (a fresh row would start at
    the same zero), so it goes too: an erased account's address does not linger there."""
    # A session whose refresh tokens have all expired (and been purged) is over.
    finished_family = ~select(RefreshToken.id).where(
        RefreshToken.family_id == RefreshTokenFamily.id
    ).exists() & (RefreshTokenFamily.created_at < now - timedelta(days=1))
    return [
        Expired((Task.id,), Task.deleted_at < now - retention),
        Expired((RefreshToken.id,), RefreshToken.expires_at < now),
        Expired((ActionToken.id,), ActionToken.expires_at < now),
        Expired((SentEmail.idempotency_key,), SentEmail.attempted_at < now - SENT_EMAIL_RETENTION),
        Expired((RefreshTokenFamily.id,), finished_family),
        Expired(
            (IdempotencyKey.user_id, IdempotencyKey.key_digest),
            IdempotencyKey.created_at < now - idempotency_retention,
        ),
        Expired((PersonalAccessToken.id,), PersonalAccessToken.expires_at < now),
        # A download link lives a day; a failed export's row a day, to show why it failed.
        Expired(
            (AccountExport.id,),
            or_(
                AccountExport.expires_at < now,
                and_(
                    AccountExport.status == ExportStatus.FAILED,
                    AccountExport.created_at < now - timedelta(days=1),
                ),
            ),
        ),
        Expired((AccountEvent.id,), AccountEvent.created_at < now - activity_retention),
        Expired(
            (MailQuota.address,),
            (MailQuota.day < now.date()) & (MailQuota.hour < now - timedelta(hours=1)),
        ),
    ]


async def delete_batch(session: AsyncSession, expired: Expired, batch_size: int) -> int:
    """Delete up to `batch_size` of the rows; rows another purge holds are skipped."""
    model = expired.keys[0].class_
    key = tuple_(*expired.keys) if len(expired.keys) > 1 else expired.keys[0]
    doomed = (
        select(*expired.keys)
        .where(expired.condition)
        .limit(batch_size)
        .with_for_update(skip_locked=True)
    )
    result = await session.execute(delete(model).where(key.in_(doomed)).returning(expired.keys[0]))
    return len(result.all())
