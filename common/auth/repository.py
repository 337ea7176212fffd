"""SQL for refresh-token families and single-use action tokens."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from common.models import ActionToken, ActionTokenPurpose, RefreshToken, RefreshTokenFamily


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

    async def revoke_family(self, family_id: uuid.UUID, reason: str, now: datetime) -> None:
        await self._session.execute(
            update(RefreshTokenFamily)
            .where(RefreshTokenFamily.id == family_id, RefreshTokenFamily.revoked_at.is_(None))
            .values(revoked_at=now, revoke_reason=reason)
        )

    async def revoke_all_families(
        self, user_id: uuid.UUID, reason: str, now: datetime
    ) -> list[uuid.UUID]:
        result = await self._session.execute(
            update(RefreshTokenFamily)
            .where(RefreshTokenFamily.user_id == user_id, RefreshTokenFamily.revoked_at.is_(None))
            .values(revoked_at=now, revoke_reason=reason)
            .returning(RefreshTokenFamily.id)
        )
        return list(result.scalars())

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
        self, user_id: uuid.UUID, purpose: ActionTokenPurpose, now: datetime
    ) -> None:
        """Mark every unused token of this purpose used: only the newest mail's link works."""
        await self._session.execute(
            update(ActionToken)
            .where(
                ActionToken.user_id == user_id,
                ActionToken.purpose == purpose,
                ActionToken.used_at.is_(None),
            )
            .values(used_at=now)
        )
