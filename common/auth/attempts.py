"""A password typed in (a sign-in, or a re-typed password before an account change) is a
counted attempt: the lockout counts it before the password is checked, and the attempt that
locks the account leaves one event in its owner's activity (the refused ones after it do not:
they would flood it).

Re-typed passwords (`PasswordConfirmation`) guard changing the password or the address and
deleting the account: a stolen session cannot guess the password faster than a stranger at
the login form, and each wrong one is in the owner's activity.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from common.auth.activity import ActivityLog
from common.auth.errors import AccountLocked
from common.auth.lockout import LoginAttempt, LoginLockout
from common.db.uow import UnitOfWork
from common.errors import InvalidInput
from common.models import ActivityKind, User
from common.security.network import Client
from common.security.passwords import PasswordHasher
from common.users.repository import UserRepository


class WrongPassword(InvalidInput):
    """The re-typed password is wrong: 400 on its field, and its failed attempt is recorded
    although the request is refused."""

    code = "wrong-password"
    keeps_changes = True

    def __init__(self, field: str) -> None:
        super().__init__("The password is not right", field=field)


async def begin_attempt(
    lockout: LoginLockout, session: AsyncSession, email: str, client: Client
) -> LoginAttempt:
    try:
        return await lockout.begin_attempt(email, client.ip)
    except AccountLocked as locked:
        if locked.newly:
            user = await UserRepository(session).get_by_email(email)
            if user is not None and not user.deletion_pending:
                ActivityLog(session).record(user.id, ActivityKind.LOCKOUT, client)
        raise


class PasswordConfirmation:
    def __init__(self, uow: UnitOfWork, hasher: PasswordHasher, lockout: LoginLockout) -> None:
        self._uow = uow
        self._hasher = hasher
        self._lockout = lockout

    async def check(self, user: User, password: str, client: Client, *, field: str) -> None:
        """The account's password, typed again: 400 on `field` when wrong, 423 once locked.
        Hashed with no database connection held, so nothing may be written before it."""
        attempt = await begin_attempt(self._lockout, self._uow.session, user.email, client)
        try:
            await self._uow.release_connection()
            verified = await self._hasher.verify(password, user.password_hash)
        except Exception:  # too busy to hash, or the database failed: nothing was checked
            await self._lockout.withdraw(attempt)
            raise
        if not verified:
            ActivityLog(self._uow.session).record(
                user.id, ActivityKind.LOGIN_FAILED, client, during=field
            )
            raise WrongPassword(field)
        await self._lockout.succeeded(attempt)
