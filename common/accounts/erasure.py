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

from sqlalchemy import ColumnElement, delete, exists, func, select

from common.accounts.errors import NoticePending
from common.db.uow import UnitOfWork
from common.jobs import JobName, Queue
from common.logging import get_logger
from common.models import Category, OutboxJob, Task, User

log = get_logger(__name__)

NOTICE_WAIT = timedelta(hours=1)


class Erasure(enum.StrEnum):
    ERASED = "erased"
    CONTINUED = "continued"
    """The batch budget ran out; a new job goes on."""
    NOT_DUE = "not_due"
    """Gone already, restored, or its grace period not over."""


def _user_rows() -> list[tuple[type[Task] | type[Category], ColumnElement[bool] | None]]:
    """The big tables, in order: live tasks and deleted ones (each on its own index), then
    categories (their task links go with either side)."""
    return [
        (Task, Task.deleted_at.is_(None)),
        (Task, Task.deleted_at.is_not(None)),
        (Category, None),
    ]


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
    for model, condition in _user_rows():
        while True:
            if budget == 0:
                async with units() as uow:
                    uow.enqueue(JobName.ERASE_ACCOUNT, Queue.MAINTENANCE, user_id=str(user_id))
                log.info("erasure_continued", user_id=str(user_id))
                return Erasure.CONTINUED
            budget -= 1
            async with units() as uow:
                deleted = await _delete_batch(uow, model, condition, user_id, batch_size)
            if deleted < batch_size:
                break
    async with units() as uow:
        if await _notice_in_flight(uow, user_id):
            raise NoticePending(str(user_id))
        gone = await uow.session.execute(
            delete(User)
            .where(User.id == user_id, User.erase_after <= func.now())
            .returning(User.id)
        )
        erased = gone.first() is not None
    log.info("account_erased" if erased else "erasure_skipped", user_id=str(user_id))
    return Erasure.ERASED if erased else Erasure.NOT_DUE


async def due_accounts(uow: UnitOfWork, *, limit: int) -> list[uuid.UUID]:
    """Accounts whose grace period is over, longest due first."""
    rows = await uow.session.execute(
        select(User.id)
        .where(User.erase_after <= func.now())
        .order_by(User.erase_after)
        .limit(limit)
    )
    return list(rows.scalars())


async def _due(units: Callable[[], UnitOfWork], user_id: uuid.UUID) -> bool:
    async with units() as uow:
        due = await uow.session.scalar(
            select(User.id).where(User.id == user_id, User.erase_after <= func.now())
        )
    return due is not None


async def _delete_batch(
    uow: UnitOfWork,
    model: type[Task] | type[Category],
    condition: ColumnElement[bool] | None,
    user_id: uuid.UUID,
    batch_size: int,
) -> int:
    doomed = select(model.id).where(model.user_id == user_id)
    if condition is not None:
        doomed = doomed.where(condition)
    result = await uow.session.execute(
        delete(model).where(model.id.in_(doomed.limit(batch_size))).returning(model.id)
    )
    return len(result.all())


async def _notice_in_flight(uow: UnitOfWork, user_id: uuid.UUID) -> bool:
    waiting = exists().where(
        OutboxJob.task_name == JobName.SEND_ACCOUNT_NOTICE,
        OutboxJob.kwargs.contains({"user_id": str(user_id)}),
    )
    recent = select(User.id).where(
        User.id == user_id, User.deletion_requested_at > func.now() - NOTICE_WAIT, waiting
    )
    return await uow.session.scalar(recent) is not None
