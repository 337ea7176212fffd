"""The activity log: the security events of an account (sign-ins, failures, lockouts, changes
of password or address, sessions ended, tokens, exports, deletion).

An event is written with the session of the change it records, so both commit or neither
does. A failed sign-in changes nothing else: its event is the one write of that request,
committed although the request answers 401 (`InvalidCredentials.keeps_changes`). Only the
client's network (IPv4 /24, IPv6 /64) and its user agent are kept, for
`ACTIVITY_RETENTION_DAYS` (the purge).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from common.auth.repository import ActivityRepository
from common.errors import InvalidInput
from common.models import AccountEvent, ActivityKind
from common.security.network import Client


class ActivityLog:
    def __init__(self, session: AsyncSession) -> None:
        self._events = ActivityRepository(session)

    def record(
        self, user_id: uuid.UUID, kind: ActivityKind, client: Client | None, **detail: Any
    ) -> AccountEvent:
        event = AccountEvent(
            id=uuid.uuid4(),
            created_at=datetime.now(UTC),  # the moment, not the transaction's start
            user_id=user_id,
            kind=kind,
            ip_network=client.network if client else None,
            user_agent=client.user_agent if client else None,
            detail=detail or None,
        )
        self._events.add(event)
        return event

    async def page(
        self, user_id: uuid.UUID, *, since: datetime, limit: int, before: uuid.UUID | None
    ) -> list[AccountEvent]:
        """The user's events newer than `since`, newest first; `before`: only those older
        than that event of theirs (the previous page's last one)."""
        anchor = None
        if before is not None:
            anchor = await self._events.position(user_id, before)
            if anchor is None:
                raise InvalidInput(
                    "No such event in your activity (it may have expired)",
                    field="before",
                    location="query",
                )
        return await self._events.page(user_id, since=since, limit=limit, before=anchor)
