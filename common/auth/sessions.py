"""Sessions (one per login: a refresh-token family) as their owner sees them, and ending
sessions and personal tokens so that they stop at once.

An ended credential is refused by PostgreSQL (the refresh path, a personal token's lookup)
and, for the access tokens already out, by a mark in the security Redis. That mark is set
right after the commit; the same transaction also enqueues a job that sets it again, so a
mark lost to a Redis outage is restored by the worker once Redis is back (the outbox keeps
the job meanwhile). While Redis is unreachable the API asks PostgreSQL instead
(`credential_ended`).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from common.auth.activity import ActivityLog
from common.auth.repository import AuthRepository, SessionLookup
from common.auth.revocation import TokenRevocations
from common.config import Settings
from common.db.session import ReadConnection
from common.db.uow import UnitOfWork
from common.errors import NotFound
from common.jobs import JobName, Queue
from common.models import ActivityKind
from common.security.network import Client

MAX_LISTED_SESSIONS = 100


class CredentialRevoker:
    def __init__(self, uow: UnitOfWork, revocations: TokenRevocations) -> None:
        self._uow = uow
        self._revocations = revocations

    def stop(self, user_id: uuid.UUID, credential_ids: Sequence[uuid.UUID]) -> None:
        """Once the transaction that ended them commits, these sessions (family ids) or
        personal tokens (ids) are refused by every process."""
        if not credential_ids:
            return
        ids = list(credential_ids)
        self._uow.after_commit(lambda: self._mark(user_id, ids))
        self._uow.enqueue(
            JobName.REVOKE_CREDENTIALS,
            Queue.CACHE,
            user_id=str(user_id),
            credential_ids=[str(i) for i in ids],
        )

    async def _mark(self, user_id: uuid.UUID, ids: list[uuid.UUID]) -> None:
        await self._revocations.revoke(user_id, ids)


async def credential_ended(
    reads: ReadConnection, user_id: uuid.UUID, session_id: uuid.UUID
) -> bool:
    """PostgreSQL's word on a session, for when the Redis marks cannot be read."""
    async with reads() as connection:
        return await SessionLookup(connection).is_ended(user_id, session_id)


@dataclass(frozen=True, slots=True)
class SessionView:
    id: uuid.UUID
    created_at: datetime
    last_used_at: datetime | None
    ip_network: str | None
    user_agent: str | None
    current: bool


class SessionService:
    def __init__(self, uow: UnitOfWork, settings: Settings, revocations: TokenRevocations) -> None:
        self._uow = uow
        self._settings = settings
        self._tokens = AuthRepository(uow.session)
        self._revoker = CredentialRevoker(uow, revocations)
        self._activity = ActivityLog(uow.session)

    async def of_user(self, user_id: uuid.UUID, current: uuid.UUID | None) -> list[SessionView]:
        now = datetime.now(UTC)
        families = await self._tokens.live_families(
            user_id,
            now=now,
            started_after=now - timedelta(days=self._settings.session_max_days),
            limit=MAX_LISTED_SESSIONS,
        )
        return [
            SessionView(
                f.id, f.created_at, f.last_used_at, f.ip_network, f.user_agent, f.id == current
            )
            for f in families
        ]

    async def end(self, user_id: uuid.UUID, session_id: uuid.UUID, client: Client) -> None:
        """End one of the user's sessions (404 for an ended, unknown or another user's)."""
        ended = await self._tokens.revoke_family(
            session_id, "ended_by_user", datetime.now(UTC), user_id=user_id
        )
        if not ended:
            raise NotFound("No such session")
        self._revoker.stop(user_id, [session_id])
        self._activity.record(
            user_id, ActivityKind.SESSION_ENDED, client, session_id=str(session_id), reason="ended"
        )

    async def end_others(
        self, user_id: uuid.UUID, current: uuid.UUID | None, client: Client
    ) -> int:
        ended = await self._tokens.revoke_all_families(
            user_id, "ended_by_user", datetime.now(UTC), keep=current
        )
        self._revoker.stop(user_id, ended)
        if ended:
            self._activity.record(
                user_id, ActivityKind.SESSION_ENDED, client, reason="others_ended", count=len(ended)
            )
        return len(ended)
