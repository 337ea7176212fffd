from __future__ import annotations

import uuid

from sqlalchemy import Column, ForeignKey, Index, String, Table, text
from sqlalchemy.orm import Mapped, mapped_column

from common.models.base import Base, Timestamps, UUIDPrimaryKey

task_categories = Table(
    "task_categories",
    Base.metadata,
    Column("task_id", ForeignKey("tasks.id", ondelete="CASCADE"), primary_key=True),
    Column("category_id", ForeignKey("categories.id", ondelete="CASCADE"), primary_key=True),
    Index(None, "category_id"),
)


class Category(UUIDPrimaryKey, Timestamps, Base):
    """A user's label for tasks; names are unique per user regardless of case."""

    __tablename__ = "categories"
    __table_args__ = (
        Index("uq_categories_user_name", "user_id", text("lower(name)"), unique=True),
    )

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(50))
    color: Mapped[str | None] = mapped_column(String(7))
