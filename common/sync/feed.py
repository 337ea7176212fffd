"""Writing the change feed: an in-transaction subscriber (`common.subscribers`), so a change and
its feed entry commit or roll back together."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from common.db.changes import CategoryChanged, ChangeKind, DomainChange, TaskChanged
from common.db.uow import UnitOfWork
from common.models import ChangeOp, EntityKind
from common.sync.repository import ChangeFeedRepository

Entity = tuple[EntityKind, uuid.UUID]


def _entry(change: DomainChange) -> tuple[Entity, ChangeOp] | None:
    entity: Entity
    if isinstance(change, TaskChanged):
        entity, kind = (EntityKind.TASK, change.task_id), change.kind
    elif isinstance(change, CategoryChanged):
        entity, kind = (EntityKind.CATEGORY, change.category_id), change.kind
    else:
        return None
    return entity, ChangeOp.DELETE if kind is ChangeKind.DELETED else ChangeOp.UPSERT


async def record_in_feed(uow: UnitOfWork, changes: Sequence[DomainChange]) -> None:
    """One feed entry per changed entity (its last change in this transaction wins), numbered
    in the order of their last changes; owners in id order, so two transactions that touch
    the same owners lock their counters in the same order."""
    latest: dict[uuid.UUID, dict[Entity, ChangeOp]] = {}
    for change in changes:
        found = _entry(change)
        if found is None:
            continue
        entity, op = found
        entries = latest.setdefault(change.user_id, {})
        entries.pop(entity, None)
        entries[entity] = op
    feed = ChangeFeedRepository(uow.session)
    for user_id in sorted(latest):
        await feed.append(user_id, [(*entity, op) for entity, op in latest[user_id].items()])
