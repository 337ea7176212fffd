from __future__ import annotations

import enum
import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from common.models.base import Base, CreatedAt, UUIDPrimaryKey, string_enum


class RefreshTokenFamily(UUIDPrimaryKey, CreatedAt, Base):
    """One login session: every rotated refresh token of that login belongs to the same family.

    Presenting a token that was already rotated revokes the family, which ends the session on
    every device holding a descendant of that token (OAuth 2.0 Security BCP, refresh rotation).
    """

    __tablename__ = "refresh_token_families"
    __table_args__ = (Index(None, "user_id"),)

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    revoked_at: Mapped[datetime | None]
    revoke_reason: Mapped[str | None] = mapped_column(String(32))
    last_used_at: Mapped[datetime | None]
    """The login, then each refresh (access tokens are checked without the database)."""
    ip_network: Mapped[str | None] = mapped_column(String(50))
    """The client's network at login (IPv4 /24, IPv6 /64): never the full address."""
    user_agent: Mapped[str | None] = mapped_column(String(256))


class RefreshToken(UUIDPrimaryKey, CreatedAt, Base):
    """A refresh token, kept only as a SHA-256 hash; `id` is the token's `jti`."""

    __tablename__ = "refresh_tokens"
    __table_args__ = (Index(None, "family_id"), Index(None, "expires_at"))

    family_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("refresh_token_families.id", ondelete="CASCADE")
    )
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]


class ActionTokenPurpose(enum.StrEnum):
    VERIFY_EMAIL = "verify_email"
    RESET_PASSWORD = "reset_password"
    CHANGE_EMAIL = "change_email"
    RESTORE_ACCOUNT = "restore_account"


class ActionToken(UUIDPrimaryKey, CreatedAt, Base):
    """A single-use emailed token (verification, password reset, address change, account
    restore), stored as a SHA-256 hash.

    The token text is an HMAC of the row id, so the worker can rebuild the link from the id alone
    and no secret ever travels through the broker or shows in Flower.
    """

    __tablename__ = "action_tokens"
    __table_args__ = (Index(None, "user_id", "purpose"), Index(None, "expires_at"))

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    purpose: Mapped[ActionTokenPurpose] = mapped_column(
        string_enum(ActionTokenPurpose, "action_token_purpose", 32)
    )
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
    new_email: Mapped[str | None] = mapped_column(String(320))
    """An address change: the address the link goes to, and the account's once followed."""
    session_id: Mapped[uuid.UUID | None]
    """An address change: the session that asked for it, which stays when the others end."""

    def usable_at(self, now: datetime) -> bool:
        """Not used yet (nor retired by a newer token) and not expired."""
        return self.used_at is None and self.expires_at > now
