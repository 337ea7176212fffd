"""Single-use mailed links (email verification, password reset, address change, account
restore), in one place for both sides: the API issues them and checks the token of a followed
link, the worker finds what to mail.

The token text is an HMAC of the row id (`action_token_for`), so a job carries only the id and
the worker rebuilds the text; both sides then look the row up by the text's hash and apply the
same rule (`ActionToken.usable_at`).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from common.auth.repository import AuthRepository
from common.auth.tokens import action_token_for, hash_token
from common.config import Settings
from common.db.uow import UnitOfWork
from common.errors import InvalidInput
from common.jobs import JobName, Queue
from common.logging import get_logger
from common.models import ActionToken, ActionTokenPurpose, User
from common.security.mail_quota import MailKind, reserve_mails
from common.users.repository import UserRepository

log = get_logger(__name__)

_MAIL_JOBS = {
    ActionTokenPurpose.VERIFY_EMAIL: JobName.SEND_VERIFICATION_EMAIL,
    ActionTokenPurpose.RESET_PASSWORD: JobName.SEND_PASSWORD_RESET_EMAIL,
    ActionTokenPurpose.CHANGE_EMAIL: JobName.SEND_EMAIL_CHANGE_LINK,
}
"""The purposes whose link is a mail of its own (a restore link travels in the deletion
notice, `common.accounts.notices`)."""


@dataclass(frozen=True, slots=True)
class LinkMail:
    """What the worker needs to mail one link."""

    token_id: uuid.UUID
    purpose: ActionTokenPurpose
    token: str
    address: str
    full_name: str


class ActionLinks:
    def __init__(self, uow: UnitOfWork, settings: Settings) -> None:
        self._uow = uow
        self._settings = settings
        self._tokens = AuthRepository(uow.session)

    async def issue(
        self,
        user: User,
        purpose: ActionTokenPurpose,
        *,
        new_email: str | None = None,
        session_id: uuid.UUID | None = None,
    ) -> bool:
        """A new token and the job that mails its link (to `new_email` for an address
        change, else to the account's address), if that address has link allowance left
        today; else False, and the last link mailed stays valid. Older unused tokens of the
        purpose are retired: only the newest mail's link works."""
        now = datetime.now(UTC)
        address = new_email or user.email
        if not await reserve_mails(
            self._uow.session, self._settings, [address], now=now, kind=MailKind.LINK
        ):
            log.warning("action_mail_skipped", user_id=str(user.id), purpose=purpose.value)
            return False
        token_id = await self.create(
            user.id,
            purpose,
            expires_at=now + timedelta(seconds=self._lifetime(purpose)),
            new_email=new_email,
            session_id=session_id,
        )
        self._uow.enqueue(_MAIL_JOBS[purpose], Queue.EMAIL, token_id=str(token_id))
        return True

    async def create(
        self,
        user_id: uuid.UUID,
        purpose: ActionTokenPurpose,
        *,
        expires_at: datetime,
        new_email: str | None = None,
        session_id: uuid.UUID | None = None,
    ) -> uuid.UUID:
        """A new token of `purpose` (the others of that purpose retired); mailing it is the
        caller's business."""
        await self._tokens.retire_action_tokens(user_id, purpose, datetime.now(UTC))
        token_id = uuid.uuid4()
        self._tokens.add(
            ActionToken(
                id=token_id,
                user_id=user_id,
                purpose=purpose,
                token_hash=hash_token(action_token_for(self._settings, token_id)),
                expires_at=expires_at,
                new_email=new_email,
                session_id=session_id,
            )
        )
        return token_id

    async def find_usable(
        self, token: str, purpose: ActionTokenPurpose, *, lock: bool = False
    ) -> ActionToken:
        """The token of a followed link, if it may still be used (400 otherwise)."""
        action = await self._lookup(token, purpose, lock=lock)
        if action is None or not action.usable_at(datetime.now(UTC)):
            raise InvalidInput("The link is invalid, expired or already used", field="token")
        return action

    async def spend(self, token: str, purpose: ActionTokenPurpose) -> ActionToken:
        """Lock and spend a single-use token (two concurrent uses: one wins, one gets 400)."""
        action = await self.find_usable(token, purpose, lock=True)
        action.used_at = datetime.now(UTC)
        return action

    async def to_mail(self, token_id: uuid.UUID, purpose: ActionTokenPurpose) -> LinkMail | None:
        """The link a mail job should send; None when its token was used, expired, retired by
        a newer one, or is gone with its user (the job then sends nothing)."""
        token = action_token_for(self._settings, token_id)
        action = await self._lookup(token, purpose, lock=False)
        if action is None or not action.usable_at(datetime.now(UTC)):
            log.info("link_mail_skipped", token_id=str(token_id), found=action is not None)
            return None
        user = await UserRepository(self._uow.session).get(action.user_id)
        assert user is not None  # tokens cascade with their user
        address = action.new_email or user.email
        return LinkMail(token_id, purpose, token, address, user.full_name)

    def _lifetime(self, purpose: ActionTokenPurpose) -> int:
        if purpose is ActionTokenPurpose.RESET_PASSWORD:
            return self._settings.password_reset_token_ttl
        return self._settings.email_token_ttl

    async def _lookup(
        self, token: str, purpose: ActionTokenPurpose, *, lock: bool
    ) -> ActionToken | None:
        return await self._tokens.get_action_token(hash_token(token), purpose, for_update=lock)
