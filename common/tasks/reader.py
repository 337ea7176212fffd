"""Task reads as response bytes, through the per-user cache.

A miss reads PostgreSQL on a connection of its own (in the API: autocommit, so the one SELECT
is one round trip, with no BEGIN before it and no ROLLBACK after it) and renders the rows
straight to JSON; the bytes are cached for the next reader and the cache warmer.
"""

from __future__ import annotations

import uuid

from common.cache import ResponseCache
from common.db.session import ReadConnection
from common.tasks.errors import TaskNotFound
from common.tasks.queries import TaskListQuery
from common.tasks.repository import TaskRepository
from common.tasks.views import render_page, render_task


class TaskReader:
    def __init__(self, reads: ReadConnection, cache: ResponseCache) -> None:
        self._reads = reads
        self._cache = cache

    async def get_json(self, user_id: uuid.UUID, task_id: uuid.UUID) -> bytes:
        async def build() -> bytes:
            async with self._reads() as connection:
                row = await TaskRepository(connection).get_view(user_id, task_id)
            if row is None:
                raise TaskNotFound()
            return render_task(row)

        return await self._cache.get_or_build(user_id, "task", str(task_id), build)

    async def list_json(self, user_id: uuid.UUID, query: TaskListQuery) -> bytes:
        async def build() -> bytes:
            async with self._reads() as connection:
                rows, total = await TaskRepository(connection).list_page(user_id, query)
            return render_page(rows, total=total, page=query.page, limit=query.limit)

        if not query.cacheable:
            return await build()
        return await self._cache.get_or_build(user_id, "tasks", query.cache_key(), build)
