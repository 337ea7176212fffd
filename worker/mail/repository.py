"""SQL for mail delivery: the per-key advisory lock and the `sent_emails` ledger.

The delivery runs the lock and the intent on an autocommit connection (each statement is
committed when it returns: an intent must be on disk before SMTP), the record that the mail
went out in a unit of work of its own.
"""

from __future__ import annotations

from email.utils import make_msgid

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from common.models import SentEmail


class SentMails:
    def __init__(self, connection: AsyncConnection) -> None:
        self._connection = connection

    async def try_lock(self, key: str) -> bool:
        """A session-level advisory lock on the key: it outlives transactions (SMTP is slow)
        and goes with the connection if this process dies."""
        lock = func.pg_try_advisory_lock(func.hashtextextended(key, 0))
        return bool(await self._connection.scalar(select(lock)))

    async def unlock(self, key: str) -> None:
        await self._connection.execute(
            select(func.pg_advisory_unlock(func.hashtextextended(key, 0)))
        )

    async def commit_intent(self, key: str) -> tuple[str, int] | None:
        """Record (committed at once) that this key is about to be sent: the Message-ID to
        send with and the attempt number; None when the key was sent already."""
        statement = insert(SentEmail).values(
            idempotency_key=key, message_id=make_msgid(domain="taskpipe.local")
        )
        row = (
            await self._connection.execute(
                statement.on_conflict_do_update(
                    index_elements=[SentEmail.idempotency_key],
                    set_={"attempts": SentEmail.attempts + 1, "attempted_at": func.now()},
                    where=SentEmail.sent_at.is_(None),
                ).returning(SentEmail.message_id, SentEmail.attempts)
            )
        ).one_or_none()
        return None if row is None else (row.message_id, row.attempts)

    async def forget_attempt(self, key: str) -> None:
        await self._connection.execute(
            update(SentEmail)
            .where(SentEmail.idempotency_key == key)
            .values(attempts=SentEmail.attempts - 1)
        )

    async def mark_sent(self, key: str) -> None:
        await self._connection.execute(
            update(SentEmail).where(SentEmail.idempotency_key == key).values(sent_at=func.now())
        )
