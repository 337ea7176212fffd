"""Caps on mail per address: every kind per UTC day, links (verification, reset) per day, and
reminder digests per hour.

A reservation is one guarded upsert on `mail_quotas` in the transaction that enqueues the mail
(its outbox row), so the count and the job commit or roll back together; two requests or
scans racing for the last mail of the day serialise on the row lock and only one gets it.
PostgreSQL rather than Redis: the count must hold exactly when it matters (no eviction, no
second store to lose), and when PostgreSQL is down no mail can be enqueued anyway.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime

from sqlalchemy import ColumnElement, and_, case, exists, or_, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from common.config import Settings
from common.logging import get_logger
from common.models import MailQuota

log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class QuotaWindows:
    """The day and the hour (UTC) a mail enqueued at `now` counts against."""

    day: date
    hour: datetime

    @classmethod
    def at(cls, now: datetime) -> QuotaWindows:
        utc = now.astimezone(UTC)
        return cls(day=utc.date(), hour=utc.replace(minute=0, second=0, microsecond=0))


class MailKind(enum.Enum):
    LINK = "link"
    """A verification or password-reset link: the only mail an unverified address gets, and
    one anyone who knows the address can ask for, so it has a smaller allowance of its own
    (spending it cannot spend the owner's reminders)."""
    DIGEST = "digest"
    """A reminder digest: also limited per hour."""
    NOTICE = "notice"
    """A notice about the account (password changed, address change asked, deletion, export
    ready, a webhook disabled): counted against the day's total only (only the account's owner
    can cause one)."""


async def reserve_mails(
    session: AsyncSession,
    settings: Settings,
    addresses: Iterable[str],
    *,
    now: datetime,
    kind: MailKind,
) -> set[str]:
    """Take one mail of `kind` from each address's allowances; return the addresses that had
    room in all of them. Rows are locked in address order, so concurrent reservations of
    overlapping addresses cannot deadlock."""
    wanted = sorted(set(addresses))
    if not wanted:
        return set()
    windows = QuotaWindows.at(now)
    row = insert(MailQuota).values(
        [
            {
                "address": address,
                "day": windows.day,
                "mails_today": 1,
                "links_today": int(kind is MailKind.LINK),
                "hour": windows.hour,
                "digests_this_hour": int(kind is MailKind.DIGEST),
            }
            for address in wanted
        ]
    )
    current, new = MailQuota.__table__.c, row.excluded
    same_day, same_hour = current.day == new.day, current.hour == new.hour
    statement = row.on_conflict_do_update(
        index_elements=[current.address],
        set_={
            "mails_today": case((same_day, current.mails_today + 1), else_=1),
            "links_today": case(
                (same_day, current.links_today + new.links_today), else_=new.links_today
            ),
            "day": new.day,
            "digests_this_hour": case(
                (same_hour, current.digests_this_hour + new.digests_this_hour),
                else_=new.digests_this_hour,
            ),
            "hour": new.hour,
        },
        where=and_(
            or_(~same_day, current.mails_today < settings.mails_per_address_per_day),
            or_(
                new.links_today == 0,
                ~same_day,
                current.links_today < settings.link_mails_per_address_per_day,
            ),
            or_(
                new.digests_this_hour == 0,
                ~same_hour,
                current.digests_this_hour < settings.digests_per_user_per_hour,
            ),
        ),
    ).returning(current.address)
    granted = set((await session.execute(statement)).scalars())
    refused = [address for address in wanted if address not in granted]
    if refused:
        log.warning("mail_quota_exhausted", addresses=len(refused), kind=kind.value)
    return granted


def digest_allowance_left(
    address: ColumnElement[str] | InstrumentedAttribute[str], settings: Settings, now: datetime
) -> ColumnElement[bool]:
    """SQL: `address` may still be sent a digest now (a pre-filter for the reminder claim, so
    capped users do not take the claim's batch from everyone else; `reserve_mails` decides)."""
    windows = QuotaWindows.at(now)
    quota = MailQuota.__table__.c
    spent = select(quota.address).where(
        quota.address == address,
        or_(
            and_(quota.day == windows.day, quota.mails_today >= settings.mails_per_address_per_day),
            and_(
                quota.hour == windows.hour,
                quota.digests_this_hour >= settings.digests_per_user_per_hour,
            ),
        ),
    )
    return ~exists(spent)
