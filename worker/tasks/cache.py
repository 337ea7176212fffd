"""Cache warming after a login and, on a schedule, for recently active users."""

from __future__ import annotations

import uuid
from datetime import datetime

from common.jobs import JobName
from common.warming import CacheWarmer
from worker.policy import job
from worker.runtime import WorkerRuntime
from worker.tasks.arguments import as_of


async def warm_active(runtime: WorkerRuntime, now: datetime) -> int:
    async with runtime.unit_of_work() as uow:
        return len(await CacheWarmer(uow, runtime.cache, runtime.cursors).warm_recently_active(now))


@job(JobName.WARM_USER_CACHE, soft_time_limit=20, time_limit=30)
async def warm_user_cache(runtime: WorkerRuntime, user_id: str) -> bool:
    async with runtime.unit_of_work() as uow:
        return await CacheWarmer(uow, runtime.cache, runtime.cursors).warm(uuid.UUID(user_id))


@job(JobName.WARM_ACTIVE_USERS, soft_time_limit=150, time_limit=180)
async def warm_active_users(runtime: WorkerRuntime, now: str | None = None) -> int:
    return await warm_active(runtime, as_of(now))
