"""Cache warming: pre-compute a user's first task page and category list into the cache.

Idempotent and bounded: each warm is at most two reads, and a part that is already cached
(fresh for the current generation) is a cache hit that builds nothing.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select

from common.cache import ResponseCache
from common.categories.service import CategoryService
from common.db.session import session_reads
from common.db.uow import UnitOfWork
from common.models import User
from common.tasks.queries import TaskListQuery
from common.tasks.reader import TaskReader

ACTIVE_WINDOW = timedelta(hours=1)
MAX_USERS_PER_RUN = 500


@dataclass(frozen=True, slots=True)
class WarmResult:
    user_id: uuid.UUID
    exists: bool


async def warm_user(uow: UnitOfWork, cache: ResponseCache, user_id: uuid.UUID) -> WarmResult:
    """Fill the default first page (`GET /api/v1/tasks`) and the category list."""
    if await uow.session.get(User, user_id) is None:
        return WarmResult(user_id, exists=False)
    await TaskReader(session_reads(uow.session), cache).list_json(user_id, TaskListQuery())
    await CategoryService(uow, cache).list_json(user_id)
    return WarmResult(user_id, exists=True)


async def recently_active_users(
    uow: UnitOfWork, now: datetime, *, limit: int = MAX_USERS_PER_RUN
) -> list[uuid.UUID]:
    """Users seen (logged in) within the last hour, most recent first, at most `limit`."""
    rows = await uow.session.execute(
        select(User.id)
        .where(User.last_seen_at >= now - ACTIVE_WINDOW)
        .order_by(User.last_seen_at.desc())
        .limit(limit)
    )
    return list(rows.scalars())
