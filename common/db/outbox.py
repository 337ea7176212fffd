"""SQL of the transactional outbox (`outbox_jobs`): rows written with the data their job is
about, published after the commit, and published again by the relay while their job is not
done."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, extract, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from common.jobs import Job
from common.models import OutboxJob

MAX_PUBLISHES = 20
"""A job published this often without finishing (it kills its worker every time) is parked:
left in the table for an operator instead of being published forever. A job that failed for
good under a policy that keeps it (mails) is parked the same way (`worker.policy`)."""
OVERDUE_GRACE = timedelta(seconds=60)
"""Two rounds of the relay (beat runs it every 30 s): a row due longer ago is overdue."""


@dataclass(frozen=True, slots=True)
class OutboxState:
    unfinished: int
    """Jobs committed and not finished: queued, running or waiting for a retry."""
    overdue: int
    """Jobs due for the relay more than `OVERDUE_GRACE` ago and not published since."""
    oldest_overdue_seconds: float
    """How long the longest-overdue job has been due (0 when none is)."""
    parked: int
    """Jobs the relay no longer publishes: an operator's (docs/operations.md)."""


async def outbox_state(connection: AsyncConnection | AsyncSession) -> OutboxState:
    """One pass over the table (it holds the jobs in flight: small)."""
    parked = OutboxJob.publish_count >= MAX_PUBLISHES
    overdue = (OutboxJob.due_at < func.now() - OVERDUE_GRACE) & ~parked
    row = (
        await connection.execute(
            select(
                func.count(),
                func.count().filter(overdue),
                func.max(extract("epoch", func.now() - OutboxJob.due_at)).filter(overdue),
                func.count().filter(parked),
            ).select_from(OutboxJob)
        )
    ).one()
    return OutboxState(
        unfinished=int(row[0]),
        overdue=int(row[1]),
        oldest_overdue_seconds=float(row[2] or 0.0),
        parked=int(row[3]),
    )


class OutboxRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    def add(self, job: Job, *, redeliver_after: timedelta) -> None:
        """The row of a job about to be published (due again only if it never finishes)."""
        self._session.add(
            OutboxJob(
                id=job.id,
                task_name=job.task_name,
                queue=job.queue,
                kwargs=job.kwargs,
                request_id=job.request_id,
                due_at=func.now() + redeliver_after,
                publish_count=1,
            )
        )

    async def due_now(self, job_ids: Sequence[uuid.UUID]) -> None:
        """Jobs whose publish failed: the relay sends them at its next run."""
        await self._session.execute(
            update(OutboxJob)
            .where(OutboxJob.id.in_(job_ids))
            .values(due_at=func.now(), publish_count=0)
        )

    async def lock_due(self, *, limit: int, max_publishes: int) -> list[tuple[Job, int]]:
        """Due jobs, oldest first, with how often each was published; their rows are locked,
        and rows another relay holds are skipped (SKIP LOCKED: two relays share the work)."""
        rows = await self._session.execute(
            select(OutboxJob)
            .where(OutboxJob.due_at <= func.now(), OutboxJob.publish_count < max_publishes)
            .order_by(OutboxJob.due_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return [
            (
                Job(
                    task_name=row.task_name,
                    queue=row.queue,
                    kwargs=row.kwargs,
                    id=row.id,
                    request_id=row.request_id,
                    retries=row.retries,
                ),
                row.publish_count,
            )
            for row in rows.scalars()
        ]

    async def published(self, job_ids: Sequence[uuid.UUID], redeliver_after: timedelta) -> None:
        """Published again: due once more only if the job has not finished by then."""
        await self._session.execute(
            update(OutboxJob)
            .where(OutboxJob.id.in_(job_ids))
            .values(
                due_at=func.now() + redeliver_after,
                publish_count=OutboxJob.publish_count + 1,
            )
        )

    async def reschedule(self, job: Job, *, due_in: timedelta) -> None:
        """Record a job's next retry (`job.retries`): the relay publishes it `due_in` from now
        if it has not finished by then. The row is created if the job had none."""
        statement = insert(OutboxJob).values(
            id=job.id,
            task_name=job.task_name,
            queue=job.queue,
            kwargs=job.kwargs,
            request_id=job.request_id,
            due_at=func.now() + due_in,
            retries=job.retries,
        )
        await self._session.execute(
            statement.on_conflict_do_update(
                index_elements=[OutboxJob.id],
                set_={"due_at": statement.excluded.due_at, "retries": statement.excluded.retries},
            )
        )

    async def finish(self, job_id: uuid.UUID, *, park: bool = False) -> bool:
        """The job is over: its row goes, or, when `park`, stays where the relay no longer
        publishes it. True when a row was parked."""
        if not park:
            await self._session.execute(delete(OutboxJob).where(OutboxJob.id == job_id))
            return False
        statement: Any = (
            update(OutboxJob)
            .where(OutboxJob.id == job_id)
            .values(publish_count=MAX_PUBLISHES)
            .returning(OutboxJob.id)
        )
        return (await self._session.execute(statement)).first() is not None
