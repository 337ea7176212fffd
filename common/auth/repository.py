"""SQL for refresh-token families (sessions), single-use action tokens and the activity log."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import exists, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from common.models import (
    AccountEvent,
    ActionToken,
    ActionTokenPurpose,
    RefreshToken,
    RefreshTokenFamily,
)


class AuthRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    def add(self, row: RefreshTokenFamily | RefreshToken | ActionToken) -> None:
        self._session.add(row)

    async def get_refresh_token_for_update(
        self, token_id: uuid.UUID
    ) -> tuple[RefreshToken, RefreshTokenFamily] | None:
        """Lock the token row so two concurrent refreshes with one token serialise."""
        stmt = (
            select(RefreshToken, RefreshTokenFamily)
            .join(RefreshTokenFamily, RefreshToken.family_id == RefreshTokenFamily.id)
            .where(RefreshToken.id == token_id)
            .with_for_update(of=RefreshToken)
        )
        row = (await self._session.execute(stmt)).one_or_none()
        return None if row is None else (row[0], row[1])

    async def revoke_family(
        self,
        family_id: uuid.UUID,
        reason: str,
        now: datetime,
        *,
        user_id: uuid.UUID | None = None,
    ) -> bool:
        """End one session (of `user_id`, when given); False if it had ended already."""
        stmt = update(RefreshTokenFamily).where(
            RefreshTokenFamily.id == family_id, RefreshTokenFamily.revoked_at.is_(None)
        )
        if user_id is not None:
            stmt = stmt.where(RefreshTokenFamily.user_id == user_id)
        result = await self._session.execute(
            stmt.values(revoked_at=now, revoke_reason=reason).returning(RefreshTokenFamily.id)
        )
        return result.first() is not None

    async def revoke_all_families(
        self,
        user_id: uuid.UUID,
        reason: str,
        now: datetime,
        *,
        keep: uuid.UUID | None = None,
    ) -> list[uuid.UUID]:
        """End every session of the user but `keep`; the ids of those that were live."""
        stmt = update(RefreshTokenFamily).where(
            RefreshTokenFamily.user_id == user_id, RefreshTokenFamily.revoked_at.is_(None)
        )
        if keep is not None:
            stmt = stmt.where(RefreshTokenFamily.id != keep)
        result = await self._session.execute(
            stmt.values(revoked_at=now, revoke_reason=reason).returning(RefreshTokenFamily.id)
        )
        return list(result.scalars())

    async def live_families(
        self, user_id: uuid.UUID, *, now: datetime, started_after: datetime, limit: int
    ) -> list[RefreshTokenFamily]:
        """Sessions that can still be refreshed: not ended, not past their maximum age, and
        holding an unused refresh token that has not expired; most recently used first."""
        refreshable = exists().where(
            RefreshToken.family_id == RefreshTokenFamily.id,
            RefreshToken.used_at.is_(None),
            RefreshToken.expires_at > now,
        )
        stmt = (
            select(RefreshTokenFamily)
            .where(
                RefreshTokenFamily.user_id == user_id,
                RefreshTokenFamily.revoked_at.is_(None),
                RefreshTokenFamily.created_at > started_after,
                refreshable,
            )
            .order_by(
                RefreshTokenFamily.last_used_at.desc().nulls_last(),
                RefreshTokenFamily.created_at.desc(),
            )
            .limit(limit)
        )
        return list((await self._session.execute(stmt)).scalars())

    async def get_action_token(
        self, token_hash: str, purpose: ActionTokenPurpose, *, for_update: bool = False
    ) -> ActionToken | None:
        stmt = select(ActionToken).where(
            ActionToken.token_hash == token_hash, ActionToken.purpose == purpose
        )
        if for_update:  # and refresh a copy loaded earlier in this session
            stmt = stmt.with_for_update().execution_options(populate_existing=True)
        return (await self._session.execute(stmt)).scalar_one_or_none()

    async def retire_action_tokens(
        self, user_id: uuid.UUID, purpose: ActionTokenPurpose | None, now: datetime
    ) -> None:
        """Mark every unused token of this purpose (of every purpose: None) used: only the
        newest mail's link works."""
        stmt = update(ActionToken).where(
            ActionToken.user_id == user_id, ActionToken.used_at.is_(None)
        )
        if purpose is not None:
            stmt = stmt.where(ActionToken.purpose == purpose)
        await self._session.execute(stmt.values(used_at=now))

    async def newest_usable_action_token(
        self, user_id: uuid.UUID, purpose: ActionTokenPurpose, now: datetime
    ) -> ActionToken | None:
        stmt = (
            select(ActionToken)
            .where(
                ActionToken.user_id == user_id,
                ActionToken.purpose == purpose,
                ActionToken.used_at.is_(None),
                ActionToken.expires_at > now,
            )
            .order_by(ActionToken.created_at.desc())
            .limit(1)
        )
        return (await self._session.execute(stmt)).scalar_one_or_none()


class SessionLookup:
    """The per-request check of a session, on a connection of its own (no unit of work)."""

    def __init__(self, connection: AsyncConnection) -> None:
        self._connection = connection

    async def is_ended(self, user_id: uuid.UUID, session_id: uuid.UUID) -> bool:
        """True for a revoked session, and for one that is unknown or another user's."""
        revoked = await self._connection.execute(
            select(RefreshTokenFamily.revoked_at).where(
                RefreshTokenFamily.id == session_id, RefreshTokenFamily.user_id == user_id
            )
        )
        row = revoked.one_or_none()
        return row is None or row.revoked_at is not None


class ActivityRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    def add(self, event: AccountEvent) -> None:
        self._session.add(event)

    async def get(self, event_id: uuid.UUID) -> AccountEvent | None:
        stmt = select(AccountEvent).where(AccountEvent.id == event_id)
        return (await self._session.execute(stmt)).scalar_one_or_none()

    async def position(
        self, user_id: uuid.UUID, event_id: uuid.UUID
    ) -> tuple[datetime, uuid.UUID] | None:
        """Where one of the user's events stands in their log (a page's anchor)."""
        stmt = select(AccountEvent.created_at, AccountEvent.id).where(
            AccountEvent.id == event_id, AccountEvent.user_id == user_id
        )
        row = (await self._session.execute(stmt)).one_or_none()
        return None if row is None else (row[0], row[1])

    async def page(
        self,
        user_id: uuid.UUID,
        *,
        since: datetime,
        limit: int,
        before: tuple[datetime, uuid.UUID] | None,
    ) -> list[AccountEvent]:
        """The user's events newer than `since` (and older than the position `before`),
        newest first."""
        stmt = select(AccountEvent).where(
            AccountEvent.user_id == user_id, AccountEvent.created_at >= since
        )
        if before is not None:
            stmt = stmt.where(tuple_(AccountEvent.created_at, AccountEvent.id) < before)
        stmt = stmt.order_by(AccountEvent.created_at.desc(), AccountEvent.id.desc()).limit(limit)
        return list((await self._session.execute(stmt)).scalars())
