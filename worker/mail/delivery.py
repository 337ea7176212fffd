"""Deliver a mail once per idempotency key, on top of Celery's at-least-once.

1. Take a PostgreSQL advisory lock on the key, held on its own connection across the SMTP
   hand-off, so two copies of one job (a message redelivered while its first run still goes
   on) never send at the same time. A crashed holder's lock goes with its connection.
2. Commit the intent (`sent_emails` row with the Message-ID) before talking to SMTP.
3. Send, then mark the row sent (retried in place for a few seconds: the mail is out).

A redelivered job finds the row sent (nothing to do), or an intent without `sent_at`: the
previous attempt died between its intent and its record, maybe after SMTP accepted. It sends
again with the same Message-ID, which mail clients use to fold the two copies into one. That
gap (SMTP's "250 OK" to our commit, a few milliseconds) is what remains of at-least-once.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from email.utils import make_msgid

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from common import jobstats
from common.db.errors import database_unavailable
from common.logging import get_logger
from common.models import SentEmail
from worker.mail.render import RenderedMail
from worker.mail.sender import build_message, send_mail
from worker.runtime import WorkerRuntime

log = get_logger(__name__)

MARK_SENT_DELAYS = (0.5, 1.0, 2.0, 4.0)


class MailInFlight(Exception):
    """Another run of the same mail job holds its lock right now; retry shortly."""


@contextlib.asynccontextmanager
async def _mail_lock(runtime: WorkerRuntime, key: str) -> AsyncIterator[AsyncConnection]:
    lock_id = func.hashtextextended(key, 0)
    async with runtime.engine.connect() as connection:
        connection = await connection.execution_options(isolation_level="AUTOCOMMIT")
        if not await connection.scalar(select(func.pg_try_advisory_lock(lock_id))):
            raise MailInFlight(key)
        try:
            yield connection
        finally:
            try:
                await connection.execute(select(func.pg_advisory_unlock(lock_id)))
            except Exception as exc:  # the connection died: so did its lock
                log.warning("mail_lock_release_failed", error=repr(exc))
                await connection.invalidate()


async def _record_intent(connection: AsyncConnection, key: str) -> tuple[str, int] | None:
    """The Message-ID to send with and the attempt number; None when already sent."""
    statement = insert(SentEmail).values(
        idempotency_key=key, message_id=make_msgid(domain="taskpipe.local")
    )
    row = (
        await connection.execute(
            statement.on_conflict_do_update(
                index_elements=[SentEmail.idempotency_key],
                set_={"attempts": SentEmail.attempts + 1, "attempted_at": func.now()},
                where=SentEmail.sent_at.is_(None),
            ).returning(SentEmail.message_id, SentEmail.attempts)
        )
    ).one_or_none()
    return None if row is None else (row.message_id, row.attempts)


async def _forget_attempt(connection: AsyncConnection, key: str) -> None:
    """SMTP refused or failed: this attempt delivered nothing, so the next one is no resend.
    (A timeout after DATA could still have delivered; that case is rare and stays counted.)"""
    with contextlib.suppress(Exception):
        await connection.execute(
            update(SentEmail)
            .where(SentEmail.idempotency_key == key)
            .values(attempts=SentEmail.attempts - 1)
        )


async def _mark_sent(runtime: WorkerRuntime, key: str) -> None:
    for delay in (*MARK_SENT_DELAYS, None):
        try:
            async with runtime.session_factory() as session:
                await session.execute(
                    update(SentEmail)
                    .where(SentEmail.idempotency_key == key)
                    .values(sent_at=func.now())
                )
                await session.commit()
            return
        except Exception as exc:
            if delay is None or not database_unavailable(exc):
                raise
            log.warning("mail_mark_sent_retry", idempotency_key=key, error=repr(exc))
            await asyncio.sleep(delay)


async def deliver_once(
    runtime: WorkerRuntime, *, idempotency_key: str, to: str, mail: RenderedMail
) -> bool:
    """Send unless this key was sent before; True when this call handed it to SMTP."""
    settings = runtime.settings
    async with _mail_lock(runtime, idempotency_key) as connection:
        intent = await _record_intent(connection, idempotency_key)
        if intent is None:
            log.info("mail_already_sent", idempotency_key=idempotency_key)
            return False
        message_id, attempt = intent
        if attempt > 1:
            # An earlier attempt died after its intent: it may have reached SMTP.
            log.warning("mail_resent", idempotency_key=idempotency_key, attempt=attempt)
            await jobstats.record(runtime.redis, "jobs", {"mail_resent": 1})
        message = build_message(settings, to, mail, idempotency_key, message_id=message_id)
        try:
            await send_mail(settings, message)
        except BaseException:
            await _forget_attempt(connection, idempotency_key)
            raise
        await _mark_sent(runtime, idempotency_key)
    log.info("mail_sent", idempotency_key=idempotency_key, subject=mail.subject)
    return True
