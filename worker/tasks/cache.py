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
from worker.runtime import WorkerRuntime, run

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


@app.task(name=JobName.WARM_USER_CACHE, soft_time_limit=20, time_limit=30)
def warm_user_cache(user_id: str) -> bool:
    return run(lambda rt: warm_one(rt, uuid.UUID(user_id)))


@app.task(name=JobName.WARM_ACTIVE_USERS, soft_time_limit=240, time_limit=300)
def warm_active_users(now: str | None = None) -> int:
    moment = datetime.fromisoformat(now) if now else datetime.now(UTC)
    return run(lambda rt: warm_active(rt, moment))
