"""Deliver a mail once per idempotency key, on top of Celery's at-least-once.

1. Take a PostgreSQL advisory lock on the key, held on its own connection across the SMTP
   hand-off, so two copies of one job (a message redelivered while its first run still goes
   on) never send at the same time. A crashed holder's lock goes with its connection.
2. Commit the intent (`sent_emails` row with the Message-ID) before talking to SMTP: a
   deliberate commit point of its own (`SentMails.commit_intent`), outside any job's unit of
   work, on the lock's autocommit connection.
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

from common import jobstats
from common.db.errors import database_unavailable
from common.logging import get_logger
from worker.mail.messages import Outgoing
from worker.mail.repository import SentMails
from worker.mail.sender import build_message, send_mail
from worker.runtime import WorkerRuntime

log = get_logger(__name__)

MARK_SENT_DELAYS = (0.5, 1.0, 2.0, 4.0)


class MailInFlight(Exception):
    """Another run of the same mail job holds its lock right now; retry shortly."""


@contextlib.asynccontextmanager
async def _mail_lock(runtime: WorkerRuntime, key: str) -> AsyncIterator[SentMails]:
    """The key's lock and the ledger on the lock's own connection, in autocommit: each
    statement on it is committed when it returns."""
    async with runtime.engine.connect() as connection:
        connection = await connection.execution_options(isolation_level="AUTOCOMMIT")
        ledger = SentMails(connection)
        if not await ledger.try_lock(key):
            raise MailInFlight(key)
        try:
            yield ledger
        finally:
            try:
                await ledger.unlock(key)
            except Exception as exc:  # the connection died: so did its lock
                log.warning("mail_lock_release_failed", error=repr(exc))
                await connection.invalidate()


async def _forget_attempt(ledger: SentMails, key: str) -> None:
    """SMTP refused or failed: this attempt delivered nothing, so the next one is no resend.
    (A timeout after DATA could still have delivered; that case is rare and stays counted.)"""
    with contextlib.suppress(Exception):
        await ledger.forget_attempt(key)


async def _mark_sent(runtime: WorkerRuntime, key: str) -> None:
    """In a unit of work of its own, retried for a few seconds: the mail is out, the record
    must say so, and the lock's connection may be the one PostgreSQL just dropped."""
    for delay in (*MARK_SENT_DELAYS, None):
        try:
            async with runtime.unit_of_work() as uow:
                await SentMails(await uow.session.connection()).mark_sent(key)
            return
        except Exception as exc:
            if delay is None or not database_unavailable(exc):
                raise
            log.warning("mail_mark_sent_retry", idempotency_key=key, error=repr(exc))
            await asyncio.sleep(delay)


async def deliver_once(runtime: WorkerRuntime, outgoing: Outgoing) -> bool:
    """Send unless this key was sent before; True when this call handed it to SMTP."""
    key = outgoing.idempotency_key
    async with _mail_lock(runtime, key) as ledger:
        intent = await ledger.commit_intent(key)
        if intent is None:
            log.info("mail_already_sent", idempotency_key=key)
            return False
        message_id, attempt = intent
        if attempt > 1:
            # An earlier attempt died after its intent: it may have reached SMTP.
            log.warning("mail_resent", idempotency_key=key, attempt=attempt)
            await jobstats.record(runtime.redis, "jobs", {"mail_resent": 1})
        message = build_message(
            runtime.settings, outgoing.to, outgoing.mail, key, message_id=message_id
        )
        try:
            await send_mail(runtime.settings, message)
        except BaseException:
            await _forget_attempt(ledger, key)
            raise
        await _mark_sent(runtime, key)
    log.info("mail_sent", idempotency_key=key, subject=outgoing.mail.subject)
    await jobstats.record(runtime.redis, "mails", {outgoing.kind: 1})
    return True
