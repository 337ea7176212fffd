"""Accounts: creating one, reading and changing a user's own profile."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy.exc import IntegrityError

from common.db.uow import UnitOfWork
from common.errors import Unauthorized
from common.models import User
from common.users.errors import EmailAlreadyRegistered
from common.users.repository import UserRepository


class UserService:
    def __init__(self, uow: UnitOfWork) -> None:
        self._uow = uow
        self._users = UserRepository(uow.session)

    async def create(
        self,
        *,
        email: str,
        full_name: str,
        password_hash: str,
        verified_at: datetime | None = None,
    ) -> User:
        """A new account under the lower-cased address (409 when it has one already)."""
        user = User(
            email=email.lower(),
            password_hash=password_hash,
            full_name=full_name,
            email_verified_at=verified_at,
        )
        self._users.add(user)
        try:
            await self._uow.session.flush()
        except IntegrityError as exc:
            raise EmailAlreadyRegistered() from exc
        return user

    async def get(self, user_id: uuid.UUID, *, for_update: bool = False) -> User:
        """The caller's account (401 once it is gone or awaiting its deletion: a token that
        outlived its revocation mark must not reach it)."""
        user = await self._users.get(user_id, for_update=for_update)
        if user is None or user.deletion_pending:
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
        await self._uow.session.refresh(user)  # the columns the database set
        return user
