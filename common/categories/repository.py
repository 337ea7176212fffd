"""SQL for categories, always scoped to their owner."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Select, and_, delete, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from common.categories.schemas import CategoryWithCount
from common.models import Category, Task, task_categories


def _with_live_task_counts() -> Select[Category, int]:
    live_task = and_(Task.id == task_categories.c.task_id, Task.deleted_at.is_(None))
    return (
        select(Category, func.count(Task.id))
        .outerjoin(task_categories, task_categories.c.category_id == Category.id)
        .outerjoin(Task, live_task)
        .group_by(Category.id)
    )


class CategoryRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def insert_unless_name_taken(
        self, user_id: uuid.UUID, name: str, color: str | None
    ) -> Category | None:
        """None when the user already has a category of that name, in any case. ON CONFLICT
        makes the race of two identical creates a clean miss for the second, never an error."""
        stmt = (
            insert(Category)
            .values(
                id=uuid.uuid4(),
                user_id=user_id,
                name=name,
                color=color,
                created_at=func.statement_timestamp(),
                updated_at=func.statement_timestamp(),
            )
            .on_conflict_do_nothing(index_elements=[Category.user_id, func.lower(Category.name)])
            .returning(Category)
        )
        return (await self._session.execute(stmt)).scalar_one_or_none()

    async def list_with_counts(
        self, user_id: uuid.UUID, *, after_name: str | None = None, limit: int | None = None
    ) -> list[CategoryWithCount]:
        """By name ignoring case (unique per user, so a name alone is a position): those
        after the category named `after_name`, at most `limit`. PostgreSQL lower-cases both
        sides, as it does for the order (Python's `lower()` differs for some letters)."""
        stmt = (
            _with_live_task_counts()
            .where(Category.user_id == user_id)
            .order_by(func.lower(Category.name), Category.id)
            .limit(limit)
        )
        if after_name is not None:
            stmt = stmt.where(func.lower(Category.name) > func.lower(after_name))
        rows = (await self._session.execute(stmt)).all()
        return [CategoryWithCount(category, count) for category, count in rows]

    async def count(self, user_id: uuid.UUID) -> int:
        stmt = select(func.count()).select_from(Category).where(Category.user_id == user_id)
        return (await self._session.execute(stmt)).scalar_one()

    async def get_with_count(
        self, user_id: uuid.UUID, category_id: uuid.UUID
    ) -> CategoryWithCount | None:
        stmt = (
            _with_live_task_counts()
            .where(Category.id == category_id, Category.user_id == user_id)
            .execution_options(populate_existing=True)
        )
        row = (await self._session.execute(stmt)).first()
        return None if row is None else CategoryWithCount(row[0], row[1])

    async def exists_locked(self, user_id: uuid.UUID, category_id: uuid.UUID) -> bool:
        """True if the user owns the category; it then cannot be deleted until we commit."""
        stmt = (
            select(Category.id)
            .where(Category.id == category_id, Category.user_id == user_id)
            .with_for_update(key_share=True, read=True)
        )
        return (await self._session.execute(stmt)).first() is not None

    async def update(
        self, user_id: uuid.UUID, category_id: uuid.UUID, values: dict[str, Any]
    ) -> bool:
        """Raises IntegrityError when the new name is taken (run it inside a savepoint)."""
        stmt = (
            update(Category)
            .where(Category.id == category_id, Category.user_id == user_id)
            .values(**values, updated_at=func.statement_timestamp())
            .returning(Category.id)
            .execution_options(synchronize_session=False)
        )
        return (await self._session.execute(stmt)).first() is not None

    async def delete(self, user_id: uuid.UUID, category_id: uuid.UUID) -> bool:
        """Its links go with it (ON DELETE CASCADE); its tasks stay."""
        stmt = (
            delete(Category)
            .where(Category.id == category_id, Category.user_id == user_id)
            .returning(Category.id)
        )
        return (await self._session.execute(stmt)).first() is not None
