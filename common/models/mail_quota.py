from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from common.models.base import Base


class MailQuota(Base):
    """How many mails one address was sent today (UTC), how many of them were links
    (verification, reset), and how many digests this hour.

    One row per address mailed recently, whatever happens to its account (a deleted and
    re-registered account does not get a fresh allowance); the purge deletes it once its day and
    hour are over, when it counts nothing any more. Counted when a mail is enqueued, in the same
    transaction as its job, by one guarded upsert: see `common.security.mail_quota`.
    """

    __tablename__ = "mail_quotas"

    address: Mapped[str] = mapped_column(String(320), primary_key=True)
    day: Mapped[date]
    mails_today: Mapped[int]
    links_today: Mapped[int]
    hour: Mapped[datetime]
    digests_this_hour: Mapped[int]
