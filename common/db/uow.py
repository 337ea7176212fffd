"""Unit of work: one transaction, and the jobs that may only leave once it committed."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from common.jobs import Job, JobPublisher
from common.logging import request_id_var
from common.models import OutboxJob


class UnitOfWork:
    """Services flush and enqueue; the boundary (router or job) calls `commit()`.

    Jobs are written to the outbox in the same transaction and published right after the
    commit; the outbox row is deleted once the broker took the job, so a rollback sends
    nothing and a broker outage loses nothing.
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
            )
        )
        self._jobs.append(job)
        return job

    async def commit(self) -> None:
        await self.session.commit()
        jobs, self._jobs = self._jobs, []
        if not jobs:
            return
        sent = await self._publisher.publish_many_async(jobs)
        if sent:
            await self.session.execute(delete(OutboxJob).where(OutboxJob.id.in_(sent)))
            await self.session.commit()

    async def rollback(self) -> None:
        self._jobs.clear()
        await self.session.rollback()
