"""SQL for users."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select
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
