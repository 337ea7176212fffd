"""Task reads as response bytes, through the per-user cache.

A miss reads PostgreSQL on a connection of its own (in the API: autocommit, so the one SELECT
is one round trip, with no BEGIN before it and no ROLLBACK after it) and renders the rows
straight to JSON; the bytes are cached for the next reader and the cache warmer.

List pages carry `next_cursor`: the signed position of their last row (`common.cursors`), for
the list of the same filters and sort, for this user only.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from common.cache import ResponseCache
from common.cursors import Cursors, InvalidCursor
from common.db.session import ReadConnection
from common.tasks import keyset
from common.tasks.errors import TaskNotFound
from common.tasks.queries import Position, TaskListQuery
from common.tasks.repository import TaskRepository
from common.tasks.views import EMPTY_PAGE, TaskRow, render_page, render_task

CURSOR_KIND = "tasks"


class TaskReader:
    def __init__(self, reads: ReadConnection, cache: ResponseCache, cursors: Cursors) -> None:
        self._reads = reads
        self._cache = cache
        self._cursors = cursors

    async def get_json(self, user_id: uuid.UUID, task_id: uuid.UUID) -> bytes:
        async def build() -> bytes:
            async with self._reads() as connection:
                row = await TaskRepository(connection).get_view(user_id, task_id)
            if row is None:
                raise TaskNotFound()
            return render_task(row)

        return await self._cache.get_or_build(user_id, "task", str(task_id), build)

    async def list_json(self, user_id: uuid.UUID, query: TaskListQuery) -> bytes:
        position = None if query.cursor is None else self._open(user_id, query, query.cursor)

        async def build() -> bytes:
            async with self._reads() as connection:
                rows, total = await TaskRepository(connection).list_page(user_id, query, position)
            if total is not None:
                more = query.offset + len(rows) < total
                cursor = self._next_cursor(user_id, query, rows) if more else None
                return render_page(
                    rows, total=total, page=query.page, limit=query.limit, next_cursor=cursor
                )
            shown = rows[: query.limit]
            cursor = self._next_cursor(user_id, query, shown) if len(rows) > len(shown) else None
            return render_page(shown, total=None, page=None, limit=query.limit, next_cursor=cursor)

        if not query.cacheable:
            return await build()
        return await self._cache.get_or_build(user_id, "tasks", query.cache_key(), build)

    async def subtasks_json(self, user_id: uuid.UUID, query: TaskListQuery) -> bytes:
        """A page of the live subtasks of `query.parent_id`; 404 unless that task is live and
        the user's (checked only when the page is empty: a parent with subtasks exists)."""
        assert query.parent_id is not None
        body = await self.list_json(user_id, query)
        if body.startswith(EMPTY_PAGE):
            async with self._reads() as connection:
                if await TaskRepository(connection).get_view(user_id, query.parent_id) is None:
                    raise TaskNotFound()
        return body

    def _next_cursor(
        self, user_id: uuid.UUID, query: TaskListQuery, rows: Sequence[TaskRow]
    ) -> str:
        position = keyset.position_of(rows[-1], query.ordering)
        return self._cursors.sign(CURSOR_KIND, user_id, {"q": query.fingerprint(), "a": position})

    def _open(self, user_id: uuid.UUID, query: TaskListQuery, cursor: str) -> Position:
        opened = self._cursors.open(CURSOR_KIND, user_id, cursor, parameter="cursor")
        if opened.get("q") != query.fingerprint():
            raise InvalidCursor(
                "cursor",
                "This cursor belongs to another list: keep the filters and sort of "
                "the page that gave it",
            )
        try:
            return Position(keyset.parse_position(opened.get("a"), query.ordering))
        except ValueError:
            raise InvalidCursor("cursor", "The cursor's position does not fit this list") from None
