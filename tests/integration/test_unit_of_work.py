"""The unit of work: one commit, then what was registered for after it; nothing on rollback."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import pytest
from redis.asyncio import Redis
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from api.resources import Resources
from common.db.changes import ChangeKind, DomainChange, TaskChanged
from common.db.uow import Subscribers, UnitOfWork
from common.errors import AppError
from common.jobs import JobName, Queue
from common.models import OutboxJob, User
from tests.support.rows import make_user

WEBHOOK_LIKE_JOB = JobName.RELAY_OUTBOX  # any registered name; the point is its outbox row


class Recorder:
    """Subscribers that remember what they saw (and an in-transaction one that writes)."""

    def __init__(self) -> None:
        self.in_transaction: list[DomainChange] = []
        self.after_commit: list[DomainChange] = []

    async def write_with(self, uow: UnitOfWork, changes: Sequence[DomainChange]) -> None:
        self.in_transaction.extend(changes)
        for _ in changes:  # what a webhook outbox would do: a row in the change's transaction
            uow.enqueue(WEBHOOK_LIKE_JOB, Queue.MAINTENANCE)

    async def react(self, changes: Sequence[DomainChange]) -> None:
        self.after_commit.extend(changes)

    def subscribers(self) -> Subscribers:
        return Subscribers(in_transaction=[self.write_with], after_commit=[self.react])


async def _outbox_rows(session: AsyncSession) -> int:
    count: int = (await session.execute(select(func.count(OutboxJob.id)))).scalar_one()
    return count


def _change() -> TaskChanged:
    return TaskChanged(uuid.uuid4(), uuid.uuid4(), ChangeKind.UPDATED)


async def test_subscribers_see_a_change_in_its_transaction_and_after_its_commit(
    session: AsyncSession, resources: Resources, broker: Redis
) -> None:
    recorder = Recorder()
    uow = UnitOfWork(session, resources.publisher, recorder.subscribers())
    change = _change()
    uow.record(change)
    assert recorder.in_transaction == recorder.after_commit == []  # nothing before the commit
    await uow.commit()
    assert recorder.in_transaction == recorder.after_commit == [change]
    assert await _outbox_rows(session) == 1  # written in the change's transaction
    assert await broker.llen(Queue.MAINTENANCE) == 1  # and published after its commit


async def test_a_rollback_drops_changes_jobs_and_after_commit_actions(
    session: AsyncSession, resources: Resources, broker: Redis
) -> None:
    recorder = Recorder()
    uow = UnitOfWork(session, resources.publisher, recorder.subscribers())
    ran: list[str] = []

    async def follow_up() -> None:
        ran.append("follow-up")

    uow.record(_change())
    uow.enqueue(JobName.WARM_USER_CACHE, Queue.CACHE, user_id=str(uuid.uuid4()))
    uow.after_commit(follow_up)
    await uow.rollback()
    await uow.commit()  # a later commit of the same unit finds nothing left to run
    assert recorder.in_transaction == recorder.after_commit == ran == []
    assert await _outbox_rows(session) == 0
    assert await broker.llen(Queue.CACHE) == 0


async def test_a_failing_after_commit_step_is_logged_and_the_rest_still_runs(
    session: AsyncSession, resources: Resources
) -> None:
    """The commit is done: an error answer would make a client retry a change already made."""
    uow = UnitOfWork(session, resources.publisher)
    ran: list[str] = []

    async def broken() -> None:
        raise RuntimeError("Redis went away")

    async def next_one() -> None:
        ran.append("next")

    uow.after_commit(broken)
    uow.after_commit(next_one)
    await uow.commit()
    assert ran == ["next"]


async def _add_user_then_raise(resources: Resources, email: str, error: Exception) -> None:
    async with resources.unit_of_work() as uow:
        await make_user(uow.session, email=email)
        raise error


async def test_async_with_commits_on_success_and_rolls_back_on_error(
    resources: Resources, committed_data: None
) -> None:
    async with resources.unit_of_work() as uow:
        await make_user(uow.session, email="kept@example.com")
    failure = RuntimeError("the job failed half-way")
    with pytest.raises(RuntimeError):
        await _add_user_then_raise(resources, "dropped@example.com", failure)
    async with resources.session_factory() as session:
        assert await _emails(session) == ["kept@example.com"]


class RefusedButRecorded(AppError):
    keeps_changes = True


async def test_an_error_that_keeps_changes_commits_them_and_still_raises(
    resources: Resources, committed_data: None
) -> None:
    """How a reused refresh token revokes its session and still answers 401."""
    with pytest.raises(RefusedButRecorded):
        await _add_user_then_raise(resources, "revoked@example.com", RefusedButRecorded())
    async with resources.session_factory() as session:
        assert await _emails(session) == ["revoked@example.com"]


async def test_releasing_the_connection_is_refused_after_a_change(
    session: AsyncSession, resources: Resources
) -> None:
    uow = UnitOfWork(session, resources.publisher)
    await uow.release_connection()  # reads only so far: fine
    uow.record(_change())
    with pytest.raises(RuntimeError, match="only reads"):
        await uow.release_connection()


async def _emails(session: AsyncSession) -> list[str]:
    return list((await session.execute(select(User.email).order_by(User.email))).scalars())
