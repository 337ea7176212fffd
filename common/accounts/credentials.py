"""Changing what signs an account in: its password and its address.

Both ask for the current password, which counts as a sign-in attempt (the lockout), so a
stolen session cannot guess it faster than a stranger at the login form. A changed password
ends every other session; a changed address ends every session but the one that asked for it.
The address changes only when the link mailed to the new address is followed: that proves
control of it (and verifies it), while a notice tells the address being left.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy.exc import IntegrityError

from common.accounts.notices import OLD_ADDRESS, AccountNotices
from common.auth.activity import ActivityLog
from common.auth.attempts import PasswordConfirmation
from common.auth.links import ActionLinks
from common.auth.lockout import LoginLockout
from common.auth.repository import AuthRepository
from common.auth.revocation import TokenRevocations
from common.auth.sessions import CredentialRevoker
from common.config import Settings
from common.db.uow import UnitOfWork
from common.errors import InvalidInput, RateLimited
from common.logging import get_logger
from common.models import ActionTokenPurpose, ActivityKind, User
from common.ratelimit import RateLimiter
from common.security.network import Client
from common.security.passwords import PasswordHasher
from common.users.errors import EmailAlreadyRegistered
from common.users.repository import UserRepository
from common.users.service import UserService

log = get_logger(__name__)


class AddressMailsSpent(RateLimited):
    code = "address-mail-allowance-spent"

    def __init__(self) -> None:
        super().__init__(
            "That address has had all the confirmation links it may get today; try tomorrow",
            headers={"Retry-After": "3600"},
        )


class CredentialService:
    def __init__(
        self,
        uow: UnitOfWork,
        settings: Settings,
        *,
        hasher: PasswordHasher,
        lockout: LoginLockout,
        limiter: RateLimiter,
        revocations: TokenRevocations,
    ) -> None:
        self._uow = uow
        self._settings = settings
        self._hasher = hasher
        self._password = PasswordConfirmation(uow, hasher, lockout)
        self._limiter = limiter
        self._users = UserRepository(uow.session)
        self._accounts = UserService(uow)
        self._tokens = AuthRepository(uow.session)
        self._links = ActionLinks(uow, settings)
        self._activity = ActivityLog(uow.session)
        self._notices = AccountNotices(uow, settings)
        self._revoker = CredentialRevoker(uow, revocations)

    async def change_password(
        self,
        user_id: uuid.UUID,
        session_id: uuid.UUID | None,
        *,
        current_password: str,
        new_password: str,
        client: Client,
    ) -> None:
        user = await self._accounts.get(user_id)
        await self._password.check(user, current_password, client, field="current_password")
        password_hash = await self._hasher.hash(new_password)
        user = await self._accounts.get(user_id, for_update=True)
        now = datetime.now(UTC)
        user.password_hash = password_hash
        user.password_changed_at = now
        # An address change asked for with the old password is cancelled with it.
        await self._tokens.retire_action_tokens(user.id, ActionTokenPurpose.CHANGE_EMAIL, now)
        ended = await self._tokens.revoke_all_families(
            user.id, "password_changed", now, keep=session_id
        )
        self._revoker.stop(user.id, ended)
        event = self._activity.record(
            user.id, ActivityKind.PASSWORD_CHANGED, client, sessions_ended=len(ended)
        )
        await self._notices.send(user, event)
        log.info("password_changed", user_id=str(user.id), sessions_ended=len(ended))

    async def request_email_change(
        self,
        user_id: uuid.UUID,
        session_id: uuid.UUID | None,
        *,
        new_email: str,
        password: str,
        client: Client,
    ) -> None:
        """Mail a confirmation link to `new_email` (counted against that address's link
        allowance, which a stranger's address shares with its owner's own requests) and a
        notice to the current address."""
        await self._limit_address_changes(user_id)
        new_email = new_email.lower()
        user = await self._accounts.get(user_id)
        if new_email == user.email:
            raise InvalidInput("That is already your address", field="new_email")
        await self._password.check(user, password, client, field="password")
        if await self._users.get_by_email(new_email) is not None:
            raise EmailAlreadyRegistered()
        user = await self._accounts.get(user_id, for_update=True)
        issued = await self._links.issue(
            user, ActionTokenPurpose.CHANGE_EMAIL, new_email=new_email, session_id=session_id
        )
        if not issued:
            raise AddressMailsSpent()
        event = self._activity.record(
            user.id,
            ActivityKind.EMAIL_CHANGE_REQUESTED,
            client,
            **{OLD_ADDRESS: user.email, "new_email": new_email},
        )
        await self._notices.send(user, event)

    async def confirm_email_change(self, token: str, client: Client) -> User:
        """Follow the mailed link (the caller limits guesses per IP): the account takes the new
        address, verified. 409 when another account took it meanwhile (the link then stays
        usable)."""
        action = await self._links.spend(token, ActionTokenPurpose.CHANGE_EMAIL)
        user = await self._users.get(action.user_id, for_update=True)
        assert user is not None  # tokens cascade with their user
        assert action.new_email is not None  # every address-change token names its address
        old_email, now = user.email, datetime.now(UTC)
        user.email = action.new_email
        user.email_verified_at = now
        try:
            await self._uow.session.flush()
        except IntegrityError as exc:
            raise EmailAlreadyRegistered() from exc
        # Links mailed to the old address must not act on the account any more.
        await self._tokens.retire_action_tokens(user.id, None, now)
        ended = await self._tokens.revoke_all_families(
            user.id, "email_changed", now, keep=action.session_id
        )
        self._revoker.stop(user.id, ended)
        self._activity.record(
            user.id,
            ActivityKind.EMAIL_CHANGED,
            client,
            **{OLD_ADDRESS: old_email, "new_email": user.email, "sessions_ended": len(ended)},
        )
        log.info("email_changed", user_id=str(user.id), sessions_ended=len(ended))
        return user

    async def _limit_address_changes(self, user_id: uuid.UUID) -> None:
        """Per account, with the mail routes' allowance: a signed-in stranger cannot make us
        mail address after address."""
        await self._limiter.enforce(
            "email_change",
            str(user_id),
            limit=self._settings.email_rate_limit,
            window_seconds=self._settings.email_rate_window_seconds,
        )
