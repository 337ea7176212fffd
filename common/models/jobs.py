from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, LargeBinary, String, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from common.models.base import Base, CreatedAt


class OutboxJob(CreatedAt, Base):
    """A job written in the same transaction as the data it is about (transactional outbox).

    The row lives until its job has finished: the worker deletes it when the job succeeded or
    failed for good. Until then the relay publishes it again whenever `due_at` passes: after a
    publish that failed (broker down), after a message the broker lost (a Redis restart), and
    for a retry the job handed back with a not-before time. The id doubles as the Celery task id.
    """

    __tablename__ = "outbox_jobs"
    __table_args__ = (Index(None, "due_at"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    task_name: Mapped[str] = mapped_column(String(200))
    queue: Mapped[str] = mapped_column(String(50))
    kwargs: Mapped[dict[str, Any]] = mapped_column(JSONB)
    request_id: Mapped[str | None] = mapped_column(String(64))
    due_at: Mapped[datetime] = mapped_column(server_default=func.now())
    """When the relay (re)publishes the row if it still exists."""
    retries: Mapped[int] = mapped_column(Integer, server_default="0")
    """The retry number the next publish carries (a retry handed back to the outbox)."""
    publish_count: Mapped[int] = mapped_column(Integer, server_default="0")


class SentEmail(Base):
    """One mail per idempotency key: the intent (with its Message-ID) is committed before the
    SMTP hand-off and marked sent right after, so a redelivered job knows a previous attempt
    may have reached SMTP and sends again with the same Message-ID (receivers deduplicate)."""

    __tablename__ = "sent_emails"
    __table_args__ = (Index(None, "attempted_at"),)

    idempotency_key: Mapped[str] = mapped_column(String(200), primary_key=True)
    message_id: Mapped[str] = mapped_column(String(250))
    attempts: Mapped[int] = mapped_column(Integer, server_default="1")
    """Sends started that did not end in a known SMTP failure: above 1, a copy may be out."""
    attempted_at: Mapped[datetime] = mapped_column(server_default=func.now())
    sent_at: Mapped[datetime | None]


class IdempotencyKey(CreatedAt, Base):
    """The first response to a request sent with an `Idempotency-Key`, written in the same
    transaction as what the request created, so a retry after any crash replays it."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (Index(None, "created_at"),)

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    key_digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    """SHA-256 of the client's key: any 255 characters fit, nothing the client sent is echoed."""
    fingerprint: Mapped[str] = mapped_column(String(64))
    status: Mapped[int] = mapped_column(Integer)
    headers: Mapped[dict[str, str]] = mapped_column(JSONB)
    body: Mapped[bytes] = mapped_column(LargeBinary)
