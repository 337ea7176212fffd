"""SQL of the transactional outbox (`outbox_jobs`): rows written with the data their job is
about, published after the commit, and published again by the relay while their job is not
done."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import timedelta

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from common.jobs import Job
from common.models import OutboxJob


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
