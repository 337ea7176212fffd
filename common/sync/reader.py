"""Reading the change feed as response bytes, through the per-user cache.

A page is one statement (the counter, the changes after the cursor and each entity's current
representation, in one snapshot) on an autocommit connection. Pages are cached like list pages:
every write bumps the owner's generation, so a client polling with a cursor that is up to date
costs one Redis call until something changes.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from common.cache import ResponseCache
from common.cursors import Cursors
from common.db.session import ReadConnection
from common.models import ChangeOp, EntityKind
from common.sync.errors import ResyncRequired
from common.sync.repository import (
    CATEGORY_COLUMNS,
    CATEGORY_COLUMNS_AT,
    TASK_COLUMNS,
    ChangeFeedRepository,
)
from common.tasks.views import task_document, to_json

CURSOR_KIND = "sync"
DEFAULT_LIMIT = 100
MAX_LIMIT = 500
_CATEGORY_FIELDS = tuple(column.key for column in CATEGORY_COLUMNS)


class SyncReader:
    def __init__(self, reads: ReadConnection, cache: ResponseCache, cursors: Cursors) -> None:
        self._reads = reads
        self._cache = cache
        self._cursors = cursors

    async def changes_json(self, user_id: uuid.UUID, since: str | None, limit: int) -> bytes:
        """The changes after the cursor `since` (from the beginning without one), at most
        `limit`. 410 when the cursor is older than a purged tombstone, or newer than anything
        the server has (its data was restored from a backup): the client must resync."""
        after = 0
        if since is not None:
            position = self._cursors.open(CURSOR_KIND, user_id, since, parameter="since")
            after = int(position["s"])

        async def build() -> bytes:
            async with self._reads() as connection:
                rows = await ChangeFeedRepository(connection).read(user_id, after, limit + 1)
            return self._render(user_id, rows, after, limit, checked=since is not None)

        key = f"{after}:{limit}:{'cursor' if since is not None else 'start'}"
        return await self._cache.get_or_build(user_id, "sync", key, build)

    def _render(
        self, user_id: uuid.UUID, rows: Sequence[Any], after: int, limit: int, *, checked: bool
    ) -> bytes:
        last_seq, purged_through = (rows[0].last_seq, rows[0].purged_through) if rows else (0, 0)
        if checked and after < purged_through:
            raise ResyncRequired(
                "Changes after this cursor include deletions that are no longer kept: drop "
                "your copy and sync again from the start (without `since`)"
            )
        if checked and after > last_seq:
            raise ResyncRequired(
                "This cursor is ahead of the server's data (restored from a backup?): drop "
                "your copy and sync again from the start (without `since`)"
            )
        changes = [_change(row) for row in rows if row.seq is not None]
        has_more = len(changes) > limit
        changes = changes[:limit]
        # Caught up: the counter's value, so the next poll starts after everything committed
        # in this snapshot (seqs of entities that changed again since are gaps, not losses).
        position = changes[-1]["seq"] if has_more else max(last_seq, after)
        return to_json(
            {
                "changes": changes,
                "next_cursor": self._cursors.sign(CURSOR_KIND, user_id, {"s": position}),
                "has_more": has_more,
            }
        )


def _change(row: Any) -> dict[str, Any]:
    change: dict[str, Any] = {
        "kind": row.kind,
        "id": row.entity_id,
        "op": row.op,
        "seq": row.seq,
    }
    if row.op is ChangeOp.UPSERT:
        values = row[TASK_COLUMNS] if row.kind is EntityKind.TASK else row[CATEGORY_COLUMNS_AT]
        if values[0] is None:
            # Gone without a tombstone (the account is being erased): say so, never `null`.
            change["op"] = ChangeOp.DELETE
        elif row.kind is EntityKind.TASK:
            change["data"] = task_document(values)
        else:
            change["data"] = dict(zip(_CATEGORY_FIELDS, values, strict=True))
    return change
