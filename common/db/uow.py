"""Unit of work: one transaction, and what may only happen once it committed.

Services write through `session` and flush; they never commit. The boundary that opened the
unit (an API request, a worker job, a background task) ends it once: `async with` commits when
the block succeeds and rolls back when it raises (except for an error that `keeps_changes`).
What services registered for after the commit runs only after a successful commit, and is
dropped on rollback:

- `enqueue`: a job. Its outbox row is written in the transaction and published after the
  commit, so a rollback sends nothing. The row stays until the worker finished the job; it is
  due for the relay only after `redeliver_after` (a lost message), or at once when the publish
  failed (broker down), so a successful publish costs no second write.
- `record`: a domain change (`common.db.changes`). In-transaction subscribers see it just
  before the commit, after-commit subscribers (cache invalidation) right after it.
- `after_commit`: anything else that must follow the committed state (a revocation in Redis).

`release_connection` is the one deliberate early end of a transaction: see there.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from common.db.changes import DomainChange
from common.db.outbox import OutboxRepository
from common.errors import AppError
from common.jobs import Job, JobPublisher
from common.logging import get_logger, request_id_var

log = get_logger(__name__)

InTransaction = Callable[["UnitOfWork", Sequence[DomainChange]], Awaitable[None]]
"""Writes what must commit with the changes (through the unit of work it is given)."""
AfterCommit = Callable[[Sequence[DomainChange]], Awaitable[None]]
"""Reacts to committed changes; must not raise (the commit is done, the caller succeeded)."""


@dataclass(frozen=True, slots=True)
class Subscribers:
    """Who reacts to domain changes: built once per process (`common.subscribers`)."""

    in_transaction: Sequence[InTransaction] = ()
    after_commit: Sequence[AfterCommit] = ()


NO_SUBSCRIBERS = Subscribers()


class UnitOfWork:
    def __init__(
        self,
        session: AsyncSession,
        publisher: JobPublisher,
        subscribers: Subscribers = NO_SUBSCRIBERS,
    ) -> None:
        self.session = session
        self._publisher = publisher
        self._subscribers = subscribers
        self._jobs: list[Job] = []
        self._changes: list[DomainChange] = []
        self._after_commit: list[Callable[[], Awaitable[None]]] = []

    async def __aenter__(self) -> UnitOfWork:
        return self

    async def __aexit__(
        self,
        error_type: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.end(error)

    async def end(self, error: BaseException | None) -> None:
        """Commit, unless `error` ended the work: then drop what was registered. Closing the
        session rolls back whatever is left (an error while doing so cannot hide `error`)."""
        try:
            if error is None or (isinstance(error, AppError) and error.keeps_changes):
                await self.commit()
            else:
                self._forget()
        finally:
            await self.session.close()

    # What services register ---------------------------------------------------------------

    def enqueue(self, task_name: str, queue: str, **kwargs: Any) -> Job:
        job = Job(task_name=task_name, queue=queue, kwargs=kwargs, request_id=request_id_var.get())
        OutboxRepository(self.session).add(job, redeliver_after=self._publisher.redeliver_after)
        self._jobs.append(job)
        return job

    def record(self, change: DomainChange) -> None:
        self._changes.append(change)

    def after_commit(self, action: Callable[[], Awaitable[None]]) -> None:
        """Run `action` once the transaction committed; it must not raise."""
        self._after_commit.append(action)

    # Ending the transaction ---------------------------------------------------------------

    async def release_connection(self) -> None:
        """End a transaction that only read, so the connection goes back to the pool before
        a slow step (a password hash) that must hold none; the session opens a new one on
        its next statement. Nothing may be registered or pending yet: this is no commit
        point for changes."""
        session = self.session
        if self._jobs or self._changes or session.new or session.dirty or session.deleted:
            raise RuntimeError("release_connection() after a change: only reads may precede it")
        await session.commit()

    async def commit(self) -> None:
        changes, self._changes = self._changes, []
        if changes:
            for write_with in self._subscribers.in_transaction:
                await write_with(self, changes)
        await self.session.commit()
        jobs, self._jobs = self._jobs, []
        actions, self._after_commit = self._after_commit, []
        await self._publish(jobs)
        if changes:
            for react in self._subscribers.after_commit:
                await _never_raising(react(changes), "after_commit_subscriber_failed")
        for action in actions:
            await _never_raising(action(), "after_commit_action_failed")

    async def rollback(self) -> None:
        self._forget()
        await self.session.rollback()

    def _forget(self) -> None:
        self._jobs.clear()
        self._changes.clear()
        self._after_commit.clear()

    async def _publish(self, jobs: Sequence[Job]) -> None:
        """Publish the committed jobs; what the broker refused is due for the relay now."""
        if not jobs:
            return
        sent = set(await self._publisher.publish_many_async(jobs))
        unsent = [job.id for job in jobs if job.id not in sent]
        if unsent:
            await OutboxRepository(self.session).due_now(unsent)
            await self.session.commit()


async def _never_raising(step: Awaitable[None], event: str) -> None:
    """After the commit the caller has succeeded: a failing follow-up is logged, not raised
    (an error answer would make a client retry a change that is already made)."""
    try:
        await step
    except Exception:
        log.exception(event)
