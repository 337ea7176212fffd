"""Unit of work: one transaction, and the jobs that may only leave once it committed."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, update
from sqlalchemy.ext.asyncio import AsyncSession

from common.jobs import Job, JobPublisher
from common.logging import request_id_var
from common.models import OutboxJob


class UnitOfWork:
    """Services flush and enqueue; the boundary (router or job) calls `commit()`.

    Jobs are written to the outbox in the same transaction and published right after the
    commit, so a rollback sends nothing. The row stays until the worker finished the job; it is
    due for the relay only after `redeliver_after` (a lost message), or at once when the
    publish failed (broker down), so a successful publish costs no second write.
    """

    def __init__(self, session: AsyncSession, publisher: JobPublisher) -> None:
        self.session = session
        self._publisher = publisher
        self._jobs: list[Job] = []

    def enqueue(self, task_name: str, queue: str, **kwargs: Any) -> Job:
        job = Job(task_name=task_name, queue=queue, kwargs=kwargs, request_id=request_id_var.get())
        self.session.add(
            OutboxJob(
                id=job.id,
                task_name=job.task_name,
                queue=job.queue,
                kwargs=job.kwargs,
                request_id=job.request_id,
                due_at=func.now() + self._publisher.redeliver_after,
                publish_count=1,
            )
        )
        self._jobs.append(job)
        return job

    async def commit(self) -> None:
        await self.session.commit()
        jobs, self._jobs = self._jobs, []
        if not jobs:
            return
        sent = set(await self._publisher.publish_many_async(jobs))
        unsent = [job.id for job in jobs if job.id not in sent]
        if unsent:
            await self.session.execute(
                update(OutboxJob)
                .where(OutboxJob.id.in_(unsent))
                .values(due_at=func.now(), publish_count=0)
            )
            await self.session.commit()

    async def rollback(self) -> None:
        self._jobs.clear()
        await self.session.rollback()
