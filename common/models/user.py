from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, Index, String, func, text
from sqlalchemy.orm import Mapped, mapped_column

from common.models.base import Base, Timestamps, UUIDPrimaryKey


class User(UUIDPrimaryKey, Timestamps, Base):
    """An account. `email` is stored lower-cased; `is_active` means the address was verified."""

    __tablename__ = "users"
    __table_args__ = (
        Index("uq_users_email", "email", unique=True),
        CheckConstraint("email = lower(email)", name="email_lower_case"),
        CheckConstraint("reminder_minutes_before >= 0", name="reminder_minutes_non_negative"),
        Index(
            "ix_users_erase_after", "erase_after", postgresql_where=text("erase_after IS NOT NULL")
        ),
    )

    email: Mapped[str] = mapped_column(String(320))
    password_hash: Mapped[str] = mapped_column(String(255))
    full_name: Mapped[str] = mapped_column(String(100))
    email_verified_at: Mapped[datetime | None]
    password_changed_at: Mapped[datetime] = mapped_column(server_default=func.now())
    reminder_minutes_before: Mapped[int] = mapped_column(server_default=text("60"))
    timezone: Mapped[str] = mapped_column(String(64), server_default="UTC")
    last_seen_at: Mapped[datetime | None]
    deletion_requested_at: Mapped[datetime | None]
    """Set by `DELETE /users/me`: from then on the account answers as if it did not exist."""
    erase_after: Mapped[datetime | None]
    """When the erasure may run; until then a mailed link restores the account."""

    @property
    def is_active(self) -> bool:
        return self.email_verified_at is not None

    @property
    def deletion_pending(self) -> bool:
        return self.deletion_requested_at is not None
