"""What people keep about their own account: personal access tokens, data exports and the
activity log. Every table is owned by one user and goes with them (`ON DELETE CASCADE`)."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, LargeBinary, String, text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from common.models.base import Base, CreatedAt, UUIDPrimaryKey, string_enum


class PersonalAccessToken(UUIDPrimaryKey, CreatedAt, Base):
    """A long-lived credential for scripts, kept only as the SHA-256 of its text; revoking
    one deletes its row."""

    __tablename__ = "personal_access_tokens"
    __table_args__ = (Index(None, "user_id", "created_at"), Index(None, "expires_at"))

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(100))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    scopes: Mapped[list[str]] = mapped_column(ARRAY(String(32)))
    expires_at: Mapped[datetime]
    last_used_at: Mapped[datetime | None]
    """Stamped at most once a minute (`common.accounts.personal_tokens`)."""


class ExportStatus(enum.StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    READY = "ready"
    FAILED = "failed"


UNFINISHED_EXPORT_STATUSES = (ExportStatus.PENDING, ExportStatus.RUNNING)
UNFINISHED_EXPORT = text(
    "status IN (" + ", ".join(f"'{status.value}'" for status in UNFINISHED_EXPORT_STATUSES) + ")"
)
"""The partial index's predicate (one unfinished export per user), from the same statuses."""


class AccountExport(UUIDPrimaryKey, CreatedAt, Base):
    """One archive of a user's data, built by a job and stored here so that every API replica
    can stream it. The archive is stored uncompressed by PostgreSQL (`STORAGE EXTERNAL`: it is
    a zip already), which lets a download read it slice by slice."""

    __tablename__ = "account_exports"
    __table_args__ = (
        Index(None, "user_id", "created_at"),
        Index(
            "uq_account_exports_one_unfinished",
            "user_id",
            unique=True,
            postgresql_where=UNFINISHED_EXPORT,
        ),
        Index(None, "expires_at"),
    )

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    status: Mapped[ExportStatus] = mapped_column(
        string_enum(ExportStatus, "export_status", 16), server_default=ExportStatus.PENDING.value
    )
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    expires_at: Mapped[datetime | None]
    """24 h after it was ready: the download stops and the purge deletes the row."""
    size_bytes: Mapped[int | None] = mapped_column(Integer)
    failure: Mapped[str | None] = mapped_column(String(200))
    archive: Mapped[bytes | None] = mapped_column(
        LargeBinary, deferred=True, deferred_raiseload=True
    )


class ActivityKind(enum.StrEnum):
    LOGIN = "login"
    LOGIN_FAILED = "login_failed"
    LOCKOUT = "lockout"
    PASSWORD_CHANGED = "password_changed"
    PASSWORD_RESET = "password_reset"
    EMAIL_CHANGE_REQUESTED = "email_change_requested"
    EMAIL_CHANGED = "email_changed"
    SESSION_ENDED = "session_ended"
    TOKEN_CREATED = "token_created"
    TOKEN_REVOKED = "token_revoked"
    EXPORT_REQUESTED = "export_requested"
    EXPORT_DOWNLOADED = "export_downloaded"
    DELETION_REQUESTED = "deletion_requested"
    DELETION_CANCELLED = "deletion_cancelled"


class AccountEvent(UUIDPrimaryKey, CreatedAt, Base):
    """A security event of one account, written in the transaction of the change it records
    and kept `ACTIVITY_RETENTION_DAYS` (the purge). Only the client's network is kept."""

    __tablename__ = "account_events"
    __table_args__ = (Index(None, "user_id", "created_at"), Index(None, "created_at"))

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    kind: Mapped[ActivityKind] = mapped_column(string_enum(ActivityKind, "activity_kind", 32))
    ip_network: Mapped[str | None] = mapped_column(String(50))
    user_agent: Mapped[str | None] = mapped_column(String(256))
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
