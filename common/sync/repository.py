"""SQL of the change feed: numbering and recording changes, reading them, purging tombstones."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Integer,
    Row,
    Uuid,
    and_,
    bindparam,
    column,
    delete,
    func,
    select,
    text,
    true,
    tuple_,
    update,
    values,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.orm import aliased

from common.models import (
    Category,
    ChangeCounter,
    ChangeFeedEntry,
    ChangeOp,
    EntityKind,
    Task,
    task_categories,
)
from common.tasks.views import VIEW_COLUMNS

# One statement: take `count` numbers from the user's counter (the upsert locks its row until
# the commit, so the user's next writer numbers after this one commits) and move each entity's
# row to its new number. Entities are distinct (ON CONFLICT may touch a row only once).
_APPEND = text(
    """
    WITH counter AS (
        INSERT INTO change_counters AS c (user_id, last_seq) VALUES (:user_id, :count)
        ON CONFLICT (user_id) DO UPDATE SET last_seq = c.last_seq + excluded.last_seq
        RETURNING c.last_seq
    )
    INSERT INTO change_feed AS f (user_id, kind, entity_id, seq, op, changed_at)
    SELECT :user_id, e.kind, e.entity_id, counter.last_seq - :count + e.n, e.op,
           statement_timestamp()
    FROM counter,
         unnest(CAST(:kinds AS varchar[]), CAST(:entity_ids AS uuid[]), CAST(:ops AS varchar[]))
             WITH ORDINALITY AS e(kind, entity_id, op, n)
    ON CONFLICT (user_id, kind, entity_id) DO UPDATE
    SET seq = excluded.seq, op = excluded.op, changed_at = excluded.changed_at
    """
)

_LIVE_TASK = aliased(Task, name="live_task")
_CATEGORY_TASK_COUNT = (
    select(func.count())
    .select_from(task_categories.join(_LIVE_TASK, _LIVE_TASK.id == task_categories.c.task_id))
    .where(task_categories.c.category_id == Category.id, _LIVE_TASK.deleted_at.is_(None))
    .scalar_subquery()
)
CATEGORY_COLUMNS = (
    Category.id,
    Category.name,
    Category.color,
    _CATEGORY_TASK_COUNT.label("task_count"),
    Category.created_at,
    Category.updated_at,
)
"""What a category response shows, in its order (`common.categories.schemas.CategoryOut`)."""

_PAGE = (
    select(ChangeFeedEntry.kind, ChangeFeedEntry.entity_id, ChangeFeedEntry.op, ChangeFeedEntry.seq)
    .where(
        ChangeFeedEntry.user_id == ChangeCounter.user_id,
        ChangeFeedEntry.seq > bindparam("since", type_=BigInteger()),
    )
    .order_by(ChangeFeedEntry.seq)
    .limit(bindparam("limit", type_=Integer()))
    .lateral("page")
)


def _upserted(
    model: type[Task] | type[Category], kind: EntityKind, *conditions: ColumnElement[bool]
) -> ColumnElement[bool]:
    """Join an upsert of the page to its entity, the counter's user's."""
    return and_(
        _PAGE.c.kind == kind,
        _PAGE.c.op == ChangeOp.UPSERT,
        model.id == _PAGE.c.entity_id,
        model.user_id == ChangeCounter.user_id,
        *conditions,
    )


READ_CHANGES = (
    select(
        ChangeCounter.last_seq,
        ChangeCounter.purged_through,
        _PAGE.c.kind,
        _PAGE.c.entity_id,
        _PAGE.c.op,
        _PAGE.c.seq,
        *VIEW_COLUMNS,
        *CATEGORY_COLUMNS,
    )
    .select_from(ChangeCounter)
    .outerjoin(_PAGE, true())
    .outerjoin(Task, _upserted(Task, EntityKind.TASK, Task.deleted_at.is_(None)))
    .outerjoin(Category, _upserted(Category, EntityKind.CATEGORY))
    .where(ChangeCounter.user_id == bindparam("user_id"))
    .order_by(_PAGE.c.seq)
)
"""The user's counter (the newest seq, the purge's horizon) and the next changes after
`since`, each with its entity's current representation, in one statement and one snapshot.
No row at all: the user never changed anything."""

TASK_COLUMNS = slice(6, 6 + len(VIEW_COLUMNS))
CATEGORY_COLUMNS_AT = slice(TASK_COLUMNS.stop, TASK_COLUMNS.stop + len(CATEGORY_COLUMNS))


class ChangeFeedRepository:
    def __init__(self, session: AsyncSession | AsyncConnection) -> None:
        self._session = session

    async def append(
        self, user_id: uuid.UUID, entries: Sequence[tuple[EntityKind, uuid.UUID, ChangeOp]]
    ) -> None:
        """Record the latest change of each (distinct) entity, numbered in this order."""
        kinds, entity_ids, ops = zip(*entries, strict=True)
        # Core execution on the session's connection: on every write, the ORM's execution
        # layer would cost more than the statement.
        session = self._session
        connection = await session.connection() if isinstance(session, AsyncSession) else session
        await connection.execute(
            _APPEND,
            {
                "user_id": user_id,
                "count": len(entries),
                "kinds": [str(kind) for kind in kinds],
                "entity_ids": list(entity_ids),
                "ops": [str(op) for op in ops],
            },
        )

    async def read(self, user_id: uuid.UUID, since: int, limit: int) -> Sequence[Row[Any]]:
        result = await self._session.execute(
            READ_CHANGES, {"user_id": user_id, "since": since, "limit": limit}
        )
        return result.all()

    async def purge_tombstones(self, older_than: datetime, batch_size: int) -> int:
        """Delete up to `batch_size` tombstones older than `older_than` and move each owner's
        horizon past them, in the caller's transaction. The owners' counter rows are locked
        first, in id order (as a writer does: counter, then feed rows), so a purge and a writer
        never deadlock, and a writer never numbers a change while its owner's tombstones are
        half purged."""
        candidates = (
            await self._session.execute(
                select(ChangeFeedEntry.user_id, ChangeFeedEntry.kind, ChangeFeedEntry.entity_id)
                .where(
                    ChangeFeedEntry.op == ChangeOp.DELETE,
                    ChangeFeedEntry.changed_at < older_than,
                )
                .limit(batch_size)
            )
        ).all()
        if not candidates:
            return 0
        owners = sorted({row.user_id for row in candidates})
        await self._session.execute(
            select(ChangeCounter.user_id)
            .where(ChangeCounter.user_id.in_(owners))
            .order_by(ChangeCounter.user_id)
            .with_for_update()
        )
        # Checked again under the locks: a restore may have turned a tombstone into an upsert.
        purged = (
            await self._session.execute(
                delete(ChangeFeedEntry)
                .where(
                    tuple_(
                        ChangeFeedEntry.user_id, ChangeFeedEntry.kind, ChangeFeedEntry.entity_id
                    ).in_([tuple(row) for row in candidates]),
                    ChangeFeedEntry.op == ChangeOp.DELETE,
                    ChangeFeedEntry.changed_at < older_than,
                )
                .returning(ChangeFeedEntry.user_id, ChangeFeedEntry.seq)
            )
        ).all()
        horizons: dict[uuid.UUID, int] = {}
        for user_id, seq in purged:
            horizons[user_id] = max(seq, horizons.get(user_id, 0))
        if horizons:
            purged_seqs = values(
                column("user_id", Uuid()), column("seq", BigInteger()), name="purged"
            ).data(list(horizons.items()))
            await self._session.execute(
                update(ChangeCounter)
                .where(ChangeCounter.user_id == purged_seqs.c.user_id)
                .values(
                    purged_through=func.greatest(ChangeCounter.purged_through, purged_seqs.c.seq)
                )
            )
        return len(purged)
