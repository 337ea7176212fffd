"""Reading and changing a user's own profile."""

from __future__ import annotations

import uuid

from common.db.uow import UnitOfWork
from common.errors import Unauthorized
from common.models import User
from common.users.repository import UserRepository


class UserService:
    def __init__(self, uow: UnitOfWork) -> None:
        self._uow = uow
        self._users = UserRepository(uow.session)

    async def get(self, user_id: uuid.UUID) -> User:
        user = await self._users.get(user_id)
        if user is None:  # a valid token for an account that no longer exists
            raise Unauthorized("Account no longer exists")
        return user

    async def update_profile(
        self,
        user_id: uuid.UUID,
        *,
        full_name: str | None = None,
        reminder_minutes_before: int | None = None,
        timezone: str | None = None,
    ) -> User:
        user = await self._users.get(user_id, for_update=True)
        if user is None:
            raise Unauthorized("Account no longer exists")
        if full_name is not None:
            user.full_name = full_name
        if timezone is not None:
            user.timezone = timezone
        if reminder_minutes_before is not None:
            user.reminder_minutes_before = reminder_minutes_before
        await self._uow.session.flush()
        await self._uow.commit()
        await self._uow.session.refresh(user)
        return user
