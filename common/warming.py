"""Cache warming: pre-compute a user's first task page and category list into the cache.

Idempotent and bounded: each warm is at most two reads, and a part that is already cached
(fresh for the current generation) is a cache hit that builds nothing.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from common.cache import ResponseCache
from common.categories.service import CategoryService
from common.cursors import Cursors
from common.db.session import session_reads
from common.db.uow import UnitOfWork
from common.logging import get_logger
from common.tasks.queries import TaskListQuery
from common.tasks.reader import TaskReader
from common.users.repository import UserRepository

log = get_logger(__name__)

ACTIVE_WINDOW = timedelta(hours=1)
MAX_USERS_PER_RUN = 500


class CacheWarmer:
    def __init__(self, uow: UnitOfWork, cache: ResponseCache, cursors: Cursors) -> None:
        self._uow = uow
        self._cache = cache
        self._cursors = cursors
        self._users = UserRepository(uow.session)

    async def warm(self, user_id: uuid.UUID) -> bool:
        """Fill the default first page (`GET /api/v1/tasks`) and the category list; False
        when the user no longer exists."""
        if await self._users.get(user_id) is None:
            return False
        reads = session_reads(self._uow.session)
        await TaskReader(reads, self._cache, self._cursors).list_json(user_id, TaskListQuery())
        await CategoryService(self._uow, self._cache, self._cursors).list_json(user_id)
        return True

    async def warm_recently_active(
        self, now: datetime, *, limit: int = MAX_USERS_PER_RUN
    ) -> list[uuid.UUID]:
        """Warm the users seen (logged in) within the last hour, most recent first, at most
        `limit` of them; returns who was warmed."""
        user_ids = await self._users.seen_since(now - ACTIVE_WINDOW, limit=limit)
        for user_id in user_ids:
            await self.warm(user_id)
        log.info("cache_warmed", users=len(user_ids))
        return user_ids
