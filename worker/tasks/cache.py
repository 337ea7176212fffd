"""Cache warming after a login and, on a schedule, for recently active users."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from common.cache import ResponseCache
from common.db.uow import UnitOfWork
from common.jobs import JobName, JobPublisher
from common.logging import get_logger
from common.warming import recently_active_users, warm_user
from worker.app import app
from worker.policy import job
from worker.runtime import WorkerRuntime

log = get_logger(__name__)


def _cache(runtime: WorkerRuntime) -> ResponseCache:
    return ResponseCache(runtime.redis, ttl_seconds=runtime.settings.cache_ttl_seconds)


async def warm_one(runtime: WorkerRuntime, user_id: uuid.UUID) -> bool:
    async with runtime.session_factory() as session:
        result = await warm_user(UnitOfWork(session, JobPublisher(app)), _cache(runtime), user_id)
    return result.exists


async def warm_active(runtime: WorkerRuntime, now: datetime) -> int:
    cache = _cache(runtime)
    async with runtime.session_factory() as session:
        uow = UnitOfWork(session, JobPublisher(app))
        user_ids = await recently_active_users(uow, now)
        for user_id in user_ids:
            await warm_user(uow, cache, user_id)
    log.info("cache_warmed", users=len(user_ids))
    return len(user_ids)


@job(JobName.WARM_USER_CACHE, soft_time_limit=20, time_limit=30)
async def warm_user_cache(runtime: WorkerRuntime, user_id: str) -> bool:
    return await warm_one(runtime, uuid.UUID(user_id))


@job(JobName.WARM_ACTIVE_USERS, soft_time_limit=150, time_limit=180)
async def warm_active_users(runtime: WorkerRuntime, now: str | None = None) -> int:
    moment = datetime.fromisoformat(now) if now else datetime.now(UTC)
    return await warm_active(runtime, moment)
