"""Notices: mails that tell an account's owner what was done to it (the password changed, an
address change was asked for, the account is to be deleted), each made from the activity event
that records it.

The rules of every mail apply (#10). Nothing goes to an address nobody verified: anyone can
register with anyone's address, and a stranger must not get our mail, so an unverified account
gets no notice (its owner sees the event in the activity log). A notice counts against the
address's daily allowance (`MailKind.NOTICE`) when it is enqueued, in the transaction of its
event; a spent allowance skips it (logged). The job carries ids only; the worker reads the
event, so nothing personal travels through the broker, and sends once per event
(`sent_emails` key `notice:<event id>`).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from common.auth.repository import ActivityRepository, AuthRepository
from common.auth.tokens import action_token_for
from common.config import Settings
from common.db.uow import UnitOfWork
from common.jobs import JobName, Queue
from common.logging import get_logger
from common.models import AccountEvent, ActionTokenPurpose, ActivityKind, User
from common.security.mail_quota import MailKind, reserve_mails
from common.users.repository import UserRepository

log = get_logger(__name__)

OLD_ADDRESS = "old_email"
"""The detail of an address-change event that names the address the notice goes to."""


@dataclass(frozen=True, slots=True)
class NoticeMail:
    """What the worker needs to mail one notice."""

    event_id: uuid.UUID
    kind: ActivityKind
    address: str
    occurred_at: datetime
    ip_network: str | None
    user_agent: str | None
    detail: dict[str, Any] = field(default_factory=dict)
    restore_token: str | None = None
    """A deletion: the token that cancels it (none when the erasure runs at once)."""
    erase_after: datetime | None = None


class AccountNotices:
    def __init__(self, uow: UnitOfWork, settings: Settings) -> None:
        self._uow = uow
        self._settings = settings

    async def send(self, user: User, event: AccountEvent) -> bool:
        """Enqueue the notice of `event` to the account's address, if it is verified and has
        allowance left today (an address change's notice goes to the address being left)."""
        if user.email_verified_at is None:
            log.info("notice_skipped", reason="unverified", kind=event.kind.value)
            return False
        address = user.email
        granted = await reserve_mails(
            self._uow.session,
            self._settings,
            [address],
            now=datetime.now(UTC),
            kind=MailKind.NOTICE,
        )
        if not granted:
            log.warning("notice_skipped", reason="allowance", kind=event.kind.value)
            return False
        self._uow.enqueue(
            JobName.SEND_ACCOUNT_NOTICE,
            Queue.EMAIL,
            event_id=str(event.id),
            user_id=str(user.id),
        )
        return True

    async def to_mail(self, event_id: uuid.UUID) -> NoticeMail | None:
        """The notice a job should send; None when its event or account is gone, the
        address was unverified meanwhile, or a deletion was cancelled before it went out."""
        session = self._uow.session
        event = await ActivityRepository(session).get(event_id)
        user = None if event is None else await UserRepository(session).get(event.user_id)
        if event is None or user is None:
            log.info("notice_skipped", reason="gone", event_id=str(event_id))
            return None
        detail = dict(event.detail or {})
        notice = NoticeMail(
            event.id,
            event.kind,
            detail.get(OLD_ADDRESS, user.email),
            event.created_at,
            event.ip_network,
            event.user_agent,
            detail,
        )
        if event.kind is ActivityKind.EMAIL_CHANGE_REQUESTED:
            return notice
        if user.email_verified_at is None:
            return None
        if event.kind is not ActivityKind.DELETION_REQUESTED:
            return notice
        if not user.deletion_pending:
            log.info("notice_skipped", reason="restored", event_id=str(event_id))
            return None
        restore = await AuthRepository(session).newest_usable_action_token(
            user.id, ActionTokenPurpose.RESTORE_ACCOUNT, datetime.now(UTC)
        )
        token = action_token_for(self._settings, restore.id) if restore else None
        return replace(notice, restore_token=token, erase_after=user.erase_after)
