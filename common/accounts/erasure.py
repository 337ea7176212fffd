"""Erasing an account whose grace period is over: its rows go in bounded batches, the big
tables first, the user row last, whose `ON DELETE CASCADE` takes everything else (sessions,
tokens, links, exports, activity, idempotency keys, and whatever user-owned tables come later).

Each batch is a transaction of its own, so a job killed or timed out half-way leaves a
partly erased account that nobody can reach (it was blocked at the request) and that the next
run goes on erasing: nothing is ever erased twice or half-committed. A run does at most
`max_batches` batches, then hands the rest to a new job in the last batch's transaction, so no
run outlives its time limit. Only a counter remains (`taskpipe_accounts_total{event="erased"}`).

The user row waits for the account's notices still in the outbox (the deletion notice of an
account erased at once must find its address), for at most `NOTICE_WAIT` after the request.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Callable
from datetime import timedelta

from common.accounts.errors import NoticePending
from common.accounts.repository import DeletionRepository, ErasureStep
from common.db.uow import UnitOfWork
from common.jobs import JobName, Queue
from common.logging import get_logger

log = get_logger(__name__)

NOTICE_WAIT = timedelta(hours=1)


class Erasure(enum.StrEnum):
    ERASED = "erased"
    CONTINUED = "continued"
    """The batch budget ran out; a new job goes on."""
    NOT_DUE = "not_due"
    """Gone already, restored, or its grace period not over."""


async def erase_account(
    units: Callable[[], UnitOfWork],
    user_id: uuid.UUID,
    *,
    batch_size: int,
    max_batches: int = 100,
) -> Erasure:
    if not await _due(units, user_id):
        return Erasure.NOT_DUE
    budget = max_batches
    for step in ErasureStep:
        while True:
            if budget == 0:
                async with units() as uow:
                    uow.enqueue(JobName.ERASE_ACCOUNT, Queue.MAINTENANCE, user_id=str(user_id))
                log.info("erasure_continued", user_id=str(user_id))
                return Erasure.CONTINUED
            budget -= 1
            async with units() as uow:
                deleted = await DeletionRepository(uow.session).delete_batch(
                    step, user_id, batch_size
                )
            if deleted < batch_size:
                break
    async with units() as uow:
        accounts = DeletionRepository(uow.session)
        if await accounts.awaits_notice(user_id, requested_within=NOTICE_WAIT):
            raise NoticePending(str(user_id))
        erased = await accounts.delete_user_if_due(user_id)
    log.info("account_erased" if erased else "erasure_skipped", user_id=str(user_id))
    return Erasure.ERASED if erased else Erasure.NOT_DUE


async def due_accounts(uow: UnitOfWork, *, limit: int) -> list[uuid.UUID]:
    """Accounts whose grace period is over, longest due first."""
    return await DeletionRepository(uow.session).due(limit=limit)


async def _due(units: Callable[[], UnitOfWork], user_id: uuid.UUID) -> bool:
    async with units() as uow:
        return await DeletionRepository(uow.session).is_due(user_id)
