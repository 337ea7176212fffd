"""The change feed: what changed in a user's tasks and categories, in commit order.

`change_counters` holds each user's last `change_seq`; a writing transaction takes its numbers
from it with one upsert, which locks the row until the commit, so one user's writers commit in
seq order and a reader can never see seq N+1 before N (other users never wait).
`change_feed` keeps one row per entity: its latest change (an upsert moves it to a new seq), so
the feed stays as large as the data. Tombstones (`op = delete`) are purged after
`PURGE_RETENTION_DAYS`; `purged_through` remembers the highest seq purged, and a cursor older
than that cannot be served (410: resync).
"""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, text
from sqlalchemy.orm import Mapped, mapped_column

from common.models.base import Base, string_enum


class EntityKind(enum.StrEnum):
    TASK = "task"
    CATEGORY = "category"


class ChangeOp(enum.StrEnum):
    UPSERT = "upsert"
    DELETE = "delete"


class ChangeCounter(Base):
    __tablename__ = "change_counters"

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    last_seq: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    purged_through: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    """The highest seq of a tombstone the purge removed: older cursors answer 410."""


class ChangeFeedEntry(Base):
    __tablename__ = "change_feed"
    __table_args__ = (
        Index("uq_change_feed_user_seq", "user_id", "seq", unique=True),
        Index("ix_change_feed_tombstones", "changed_at", postgresql_where=text("op = 'delete'")),
    )

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    kind: Mapped[EntityKind] = mapped_column(
        string_enum(EntityKind, "entity_kind", 10), primary_key=True
    )
    entity_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger)
    op: Mapped[ChangeOp] = mapped_column(string_enum(ChangeOp, "change_op", 10))
    changed_at: Mapped[datetime] = mapped_column(server_default=text("now()"))
