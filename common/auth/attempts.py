"""A password typed in (a sign-in, or a re-typed password before an account change) is a
counted attempt: the lockout counts it before the password is checked, and the attempt that
locks the account leaves one event in its owner's activity (the refused ones after it do not:
they would flood it)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from common.auth.activity import ActivityLog
from common.auth.errors import AccountLocked
from common.auth.lockout import LoginAttempt, LoginLockout
from common.models import ActivityKind
from common.security.network import Client
from common.users.repository import UserRepository


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
