"""SQL for users."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from common.models import User


class UserRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def get(self, user_id: uuid.UUID, *, for_update: bool = False) -> User | None:
        stmt = select(User).where(User.id == user_id)
        if for_update:
            stmt = stmt.with_for_update()
        return (await self._session.execute(stmt)).scalar_one_or_none()

    async def get_by_email(self, email: str) -> User | None:
        stmt = select(User).where(User.email == email.lower())
        return (await self._session.execute(stmt)).scalar_one_or_none()

    async def replace_password_hash(self, user_id: uuid.UUID, old: str, new: str) -> bool:
        """Store `new` only while the stored hash is still `old` (a sign-in upgrading its
        hash): a password reset or change that committed meanwhile keeps its own."""
        replaced = await self._session.execute(
            update(User)
            .where(User.id == user_id, User.password_hash == old)
            .values(password_hash=new)
            .returning(User.id)
            .execution_options(synchronize_session=False)
        )
        return replaced.first() is not None

    def add(self, user: User) -> None:
        self._session.add(user)

    async def seen_since(self, moment: datetime, *, limit: int) -> list[uuid.UUID]:
        """Users who logged in at `moment` or later, most recent first."""
        rows = await self._session.execute(
            select(User.id)
            .where(User.last_seen_at >= moment)
            .order_by(User.last_seen_at.desc())
            .limit(limit)
        )
        return list(rows.scalars())
