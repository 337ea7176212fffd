from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import (
    CheckConstraint,
    ForeignKey,
    Index,
    SmallInteger,
    String,
    Text,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

from common.models.base import Base, Timestamps, UUIDPrimaryKey, string_enum

if TYPE_CHECKING:
    from common.models.category import Category


class TaskStatus(enum.StrEnum):
    PENDING = "pending"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


OPEN_STATUSES = (TaskStatus.PENDING, TaskStatus.IN_PROGRESS)
"""Still to do: what `overdue` means and what gets reminders."""
_OPEN_SQL = "status IN (" + ", ".join(f"'{status.value}'" for status in OPEN_STATUSES) + ")"


class TaskPriority(enum.StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


_PRIORITY_RANK = {TaskPriority.LOW: 1, TaskPriority.MEDIUM: 2, TaskPriority.HIGH: 3}
_RANK_PRIORITY = {rank: priority for priority, rank in _PRIORITY_RANK.items()}


class PriorityRank(TypeDecorator[TaskPriority]):
    """Stores priority as 1/2/3 so `ORDER BY priority` means low < medium < high, on an index."""

    impl = SmallInteger
    cache_ok = True

    def process_bind_param(self, value: TaskPriority | None, dialect: Dialect) -> int | None:
        return None if value is None else _PRIORITY_RANK[TaskPriority(value)]

    def process_result_value(self, value: int | None, dialect: Dialect) -> TaskPriority | None:
        return None if value is None else _RANK_PRIORITY[value]


LIVE = text("deleted_at IS NULL")


class Task(UUIDPrimaryKey, Timestamps, Base):
    __tablename__ = "tasks"
    __table_args__ = (
        CheckConstraint("priority BETWEEN 1 AND 3", name="priority_rank"),
        CheckConstraint("version >= 1", name="version_positive"),
        # Small thanks to B-tree deduplication: counts of a user's tasks are index-only scans.
        Index("ix_tasks_user_live", "user_id", postgresql_where=LIVE),
        Index("ix_tasks_user_created", "user_id", "created_at", "id", postgresql_where=LIVE),
        Index("ix_tasks_user_updated", "user_id", "updated_at", "id", postgresql_where=LIVE),
        Index("ix_tasks_user_due", "user_id", "due_date", "id", postgresql_where=LIVE),
        Index("ix_tasks_user_status", "user_id", "status", "created_at", postgresql_where=LIVE),
        Index("ix_tasks_user_priority", "user_id", "priority", "created_at", postgresql_where=LIVE),
        Index("ix_tasks_user_title", "user_id", "title", "id", postgresql_where=LIVE),
        Index(
            "ix_tasks_user_open_due",
            "user_id",
            "due_date",
            "id",
            postgresql_where=text(f"deleted_at IS NULL AND {_OPEN_SQL}"),
        ),
        # Search within one user's tasks (btree_gin lets a GIN index start with user_id):
        # its cost follows that user's data, never every tenant's.
        Index(
            "ix_tasks_user_search",
            "user_id",
            text("(lower(title || ' ' || coalesce(description, ''))) gin_trgm_ops"),
            postgresql_using="gin",
            postgresql_where=LIVE,
        ),
        Index(
            "ix_tasks_reminder_due",
            "due_date",
            postgresql_where=text(
                "reminder_sent_at IS NULL AND deleted_at IS NULL AND due_date IS NOT NULL"
                f" AND {_OPEN_SQL}"
            ),
        ),
        Index("ix_tasks_deleted_at", "deleted_at", postgresql_where=text("deleted_at IS NOT NULL")),
        # One next occurrence per occurrence, however often or concurrently it is completed.
        Index(
            "uq_tasks_previous_occurrence",
            "previous_occurrence_id",
            unique=True,
            postgresql_where=text("previous_occurrence_id IS NOT NULL"),
        ),
        CheckConstraint(
            "recurrence IS NULL OR (due_date IS NOT NULL AND recurrence_start IS NOT NULL"
            " AND recurrence_zone IS NOT NULL)",
            name="recurrence_complete",
        ),
        # The trash: one user's deleted tasks, newest deletion first.
        Index(
            "ix_tasks_user_deleted",
            "user_id",
            "deleted_at",
            "id",
            postgresql_where=text("deleted_at IS NOT NULL"),
        ),
        # Every child, live or deleted: walks of a subtree (delete, restore) and the foreign
        # key's ON DELETE when the purge removes a parent.
        Index("ix_tasks_parent", "parent_id", postgresql_where=text("parent_id IS NOT NULL")),
        # Live children by status: a parent's subtask counts are an index-only scan.
        Index(
            "ix_tasks_live_children",
            "parent_id",
            "status",
            postgresql_where=text("deleted_at IS NULL AND parent_id IS NOT NULL"),
        ),
        CheckConstraint("parent_id <> id", name="not_its_own_parent"),
    )

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    parent_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("tasks.id", ondelete="SET NULL"))
    """A subtask's parent (same user, at most three levels; `common.tasks.tree`). Only a
    deleted parent is ever purged, and its subtree was deleted with it: SET NULL is a guard
    that never takes a live task with it."""
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    status: Mapped[TaskStatus] = mapped_column(
        string_enum(TaskStatus, "task_status", 20),
        server_default=TaskStatus.PENDING.value,
    )
    priority: Mapped[TaskPriority] = mapped_column(PriorityRank, server_default=text("2"))
    due_date: Mapped[datetime | None]
    completed_at: Mapped[datetime | None]
    reminder_sent_at: Mapped[datetime | None]
    deleted_at: Mapped[datetime | None]
    version: Mapped[int] = mapped_column(server_default=text("1"))
    # A recurring task (common.recurrence): the canonical rule, the series' start (COUNT counts
    # from it) and the zone it is evaluated in, copied from the user's profile when attached.
    recurrence: Mapped[str | None] = mapped_column(String(255))
    recurrence_start: Mapped[datetime | None]
    recurrence_zone: Mapped[str | None] = mapped_column(String(64))
    previous_occurrence_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("tasks.id", ondelete="SET NULL")
    )
    """The occurrence whose completion created this one."""

    categories: Mapped[list[Category]] = relationship(
        secondary="task_categories", lazy="raise", order_by="Category.name"
    )
