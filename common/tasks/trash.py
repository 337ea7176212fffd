"""The trash: a user's deleted tasks still inside the retention period, newest deletion first.

Not cached: what it shows changes with the clock (a task leaves it when its retention ends),
not only with writes, and it is read rarely.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from common.cursors import Cursors, InvalidCursor
from common.db.session import ReadConnection
from common.tasks.repository import TaskRepository
from common.tasks.views import task_document, to_json

CURSOR_KIND = "trash"


class TrashReader:
    def __init__(self, reads: ReadConnection, cursors: Cursors, *, kept_for: timedelta) -> None:
        self._reads = reads
        self._cursors = cursors
        self._kept_for = kept_for

    async def page_json(self, user_id: uuid.UUID, *, limit: int, cursor: str | None) -> bytes:
        after = None if cursor is None else self._open(user_id, cursor)
        async with self._reads() as connection:
            rows = await TaskRepository(connection).trash_page(
                user_id, kept_for=self._kept_for, limit=limit + 1, after=after
            )
        shown = rows[:limit]
        next_cursor = None
        if len(rows) > limit:
            last = shown[-1]
            position = {"d": last.deleted_at.isoformat(), "i": str(last.id)}
            next_cursor = self._cursors.sign(CURSOR_KIND, user_id, position)
        items: list[dict[str, Any]] = [
            {**task_document(row[:-1]), "deleted_at": row.deleted_at} for row in shown
        ]
        return to_json({"items": items, "next_cursor": next_cursor})

    def _open(self, user_id: uuid.UUID, cursor: str) -> tuple[datetime, uuid.UUID]:
        position = self._cursors.open(CURSOR_KIND, user_id, cursor, parameter="cursor")
        try:
            return datetime.fromisoformat(position["d"]), uuid.UUID(position["i"])
        except (KeyError, TypeError, ValueError):
            raise InvalidCursor("cursor", "The cursor's position does not fit the trash") from None
