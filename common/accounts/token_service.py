"""Creating, listing and revoking personal access tokens (the owner's side; checking a
presented token is `common.accounts.personal_tokens`)."""

from __future__ import annotations

import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from common.accounts.errors import TooManyTokens
from common.accounts.personal_tokens import new_personal_token
from common.accounts.repository import PersonalTokenRepository
from common.auth.activity import ActivityLog
from common.auth.revocation import TokenRevocations
from common.auth.sessions import CredentialRevoker
from common.auth.tokens import hash_token
from common.config import Settings
from common.db.uow import UnitOfWork
from common.errors import NotFound
from common.models import ActivityKind, PersonalAccessToken
from common.security.network import Client


@dataclass(frozen=True, slots=True)
class CreatedToken:
    token: PersonalAccessToken
    secret: str
    """Shown once: only its hash is kept."""


class PersonalTokenService:
    def __init__(self, uow: UnitOfWork, settings: Settings, revocations: TokenRevocations) -> None:
        self._uow = uow
        self._settings = settings
        self._tokens = PersonalTokenRepository(uow.session)
        self._revoker = CredentialRevoker(uow, revocations)
        self._activity = ActivityLog(uow.session)

    async def create(
        self,
        user_id: uuid.UUID,
        *,
        name: str,
        scopes: Collection[str],
        expires_in_days: int,
        client: Client,
    ) -> CreatedToken:
        limit = self._settings.personal_tokens_per_user
        if await self._tokens.count_of_user(user_id) >= limit:
            raise TooManyTokens(f"At most {limit} tokens per account; revoke one first")
        secret = new_personal_token()
        token = PersonalAccessToken(
            id=uuid.uuid4(),
            user_id=user_id,
            name=name,
            token_hash=hash_token(secret),
            scopes=sorted(set(scopes)),
            expires_at=datetime.now(UTC) + timedelta(days=expires_in_days),
        )
        self._tokens.add(token)
        self._activity.record(
            user_id, ActivityKind.TOKEN_CREATED, client, token_id=str(token.id), name=name
        )
        await self._uow.session.flush()
        await self._uow.session.refresh(token)  # created_at, set by the database
        return CreatedToken(token, secret)

    async def of_user(self, user_id: uuid.UUID) -> list[PersonalAccessToken]:
        """Live and expired ones (the purge removes those), newest first."""
        return await self._tokens.of_user(user_id)

    async def revoke(self, user_id: uuid.UUID, token_id: uuid.UUID, client: Client) -> None:
        """Delete one of the user's tokens (404 for an unknown or another user's); it stops
        working in every process at once."""
        name = await self._tokens.delete(user_id, token_id)
        if name is None:
            raise NotFound("No such token")
        self._revoker.stop(user_id, [token_id])
        self._activity.record(
            user_id, ActivityKind.TOKEN_REVOKED, client, token_id=str(token_id), name=name
        )

    async def revoke_all(self, user_id: uuid.UUID) -> list[uuid.UUID]:
        """Every token of the user (a deletion); the revoked ids."""
        ids = await self._tokens.delete_all(user_id)
        self._revoker.stop(user_id, ids)
        return ids
