"""Deleting an account: asked for with the password, effective at once for everything that
could act on the account, erased after a grace period during which a mailed link restores it.

From the request on, every session and personal token stops (revocation marks, and PostgreSQL
refuses them), every mailed link is retired, and sign-in, password reset and verification
answer as for an unknown address. The data stays until `erase_after`
(`ACCOUNT_DELETION_GRACE_DAYS`, 7 by default; 0 erases at once), when the erasure job removes
it (`common.accounts.erasure`). The deletion notice carries the single-use restore token,
valid until then; it goes only to a verified address, so an account registered with someone
else's address is deleted without mailing them (and cannot be restored).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from common.accounts.notices import AccountNotices
from common.accounts.repository import DeletionRepository
from common.accounts.token_service import PersonalTokenService
from common.auth.activity import ActivityLog
from common.auth.attempts import PasswordConfirmation
from common.auth.links import ActionLinks
from common.auth.lockout import LoginLockout
from common.auth.repository import AuthRepository
from common.auth.revocation import TokenRevocations
from common.auth.sessions import CredentialRevoker
from common.config import Settings
from common.db.uow import UnitOfWork
from common.errors import InvalidInput
from common.jobs import JobName, Queue
from common.logging import get_logger
from common.models import ActionTokenPurpose, ActivityKind
from common.security.network import Client
from common.security.passwords import PasswordHasher
from common.users.service import UserService

log = get_logger(__name__)


class DeletionService:
    def __init__(
        self,
        uow: UnitOfWork,
        settings: Settings,
        *,
        hasher: PasswordHasher,
        lockout: LoginLockout,
        revocations: TokenRevocations,
    ) -> None:
        self._uow = uow
        self._settings = settings
        self._password = PasswordConfirmation(uow, hasher, lockout)
        self._revocations = revocations
        self._tokens = AuthRepository(uow.session)
        self._links = ActionLinks(uow, settings)
        self._activity = ActivityLog(uow.session)

    async def request(self, user_id: uuid.UUID, *, password: str, client: Client) -> datetime:
        """Delete the account (after the grace period); when the erasure may run."""
        accounts = UserService(self._uow)
        user = await accounts.get(user_id)
        await self._password.check(user, password, client, field="password")
        user = await accounts.get(user_id, for_update=True)
        now = datetime.now(UTC)
        grace = timedelta(days=self._settings.account_deletion_grace_days)
        user.deletion_requested_at = now
        user.erase_after = now + grace
        sessions = await self._tokens.revoke_all_families(user.id, "account_deleted", now)
        CredentialRevoker(self._uow, self._revocations).stop(user.id, sessions)
        tokens = await PersonalTokenService(
            self._uow, self._settings, self._revocations
        ).revoke_all(user.id)
        await self._tokens.retire_action_tokens(user.id, None, now)
        if grace:
            await self._links.create(
                user.id, ActionTokenPurpose.RESTORE_ACCOUNT, expires_at=user.erase_after
            )
        event = self._activity.record(
            user.id,
            ActivityKind.DELETION_REQUESTED,
            client,
            erase_after=user.erase_after.isoformat(),
        )
        await AccountNotices(self._uow, self._settings).send(user, event)
        if not grace:
            self._uow.enqueue(JobName.ERASE_ACCOUNT, Queue.MAINTENANCE, user_id=str(user.id))
        log.info(
            "account_deletion_requested",
            user_id=str(user.id),
            sessions_ended=len(sessions),
            tokens_revoked=len(tokens),
            grace_days=grace.days,
        )
        return user.erase_after

    async def restore(self, token: str, client: Client) -> None:
        """Follow the restore link: the account comes back as it was (sign in again). Once
        `erase_after` has passed (by the database's clock, which the erasure reads too) the
        link no longer works, whatever the erasure's progress."""
        action = await self._links.spend(token, ActionTokenPurpose.RESTORE_ACCOUNT)
        user = await DeletionRepository(self._uow.session).restorable_for_update(action.user_id)
        if user is None:
            raise InvalidInput("The link is invalid, expired or already used", field="token")
        user.deletion_requested_at = None
        user.erase_after = None
        self._activity.record(user.id, ActivityKind.DELETION_CANCELLED, client)
        log.info("account_deletion_cancelled", user_id=str(user.id))
