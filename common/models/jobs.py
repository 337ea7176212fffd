from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Index, String
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from common.db.base import Base, CreatedAt


class OutboxJob(CreatedAt, Base):
    """A job written in the same transaction as the data it is about (transactional outbox).

    The API sends it to the broker right after the commit and deletes the row; if the broker is
    down, the row stays and the relay sends it later, so a Redis outage never loses an email.
    The id doubles as the Celery task id and the job's idempotency key.
    """

    __tablename__ = "outbox_jobs"
    __table_args__ = (Index(None, "created_at"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    task_name: Mapped[str] = mapped_column(String(200))
    queue: Mapped[str] = mapped_column(String(50))
    kwargs: Mapped[dict[str, Any]] = mapped_column(JSONB)
    request_id: Mapped[str | None] = mapped_column(String(64))


class SentEmail(Base):
    """Idempotency record of mails handed to SMTP, so a redelivered job never mails twice."""

    __tablename__ = "sent_emails"
    __table_args__ = (Index(None, "sent_at"),)

    idempotency_key: Mapped[str] = mapped_column(String(200), primary_key=True)
    sent_at: Mapped[datetime]
