"""SQL of the task tree: walks up to a task's ancestors and down its subtree.

Every walk is one recursive statement that stops `MAX_WALK` levels away (subtasks nest at most
three deep, so a cycle that somehow got into the data makes a walk long, never endless). Down
walks follow `ix_tasks_live_children` (live subtasks) or `ix_tasks_parent` (deleted ones); up
walks the primary key. `tests/integration/test_task_indexes.py` checks the plans at 50k rows.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import (
    CTE,
    ColumnElement,
    Integer,
    Interval,
    Select,
    Update,
    bindparam,
    func,
    literal,
    select,
    update,
)
from sqlalchemy.orm import aliased

from common.models import Task

MAX_WALK = 16
_OTHER = aliased(Task, name="other")
_FIRST = literal(1, Integer()).label("level")


def ancestry(user_id: uuid.UUID, task_id: uuid.UUID) -> Select[Any]:
    """The ids of a live task of the user and of its live ancestors, nearest first."""
    up = (
        select(Task.id, Task.parent_id, _FIRST)
        .where(Task.id == task_id, Task.user_id == user_id, Task.deleted_at.is_(None))
        .cte("up", recursive=True)
    )
    up = up.union_all(
        select(_OTHER.id, _OTHER.parent_id, up.c.level + 1)
        .join(up, _OTHER.id == up.c.parent_id)
        .where(_OTHER.deleted_at.is_(None), up.c.level < MAX_WALK)
    )
    return select(up.c.id).order_by(up.c.level)


def _live_below(roots: Select[uuid.UUID, int], name: str) -> CTE:
    """`roots` (id, level 1) and every live task below them."""
    down = roots.cte(name, recursive=True)
    return down.union_all(
        select(_OTHER.id, down.c.level + 1)
        .join(down, _OTHER.parent_id == down.c.id)
        .where(_OTHER.deleted_at.is_(None), down.c.level < MAX_WALK)
    )


def _live(user_id: uuid.UUID, *conditions: ColumnElement[bool]) -> Select[uuid.UUID, int]:
    return select(Task.id, _FIRST).where(
        Task.user_id == user_id, Task.deleted_at.is_(None), *conditions
    )


def subtree_height(user_id: uuid.UUID, task_id: uuid.UUID) -> Select[Any]:
    """How many levels the live subtree of a live task spans, itself included (0: no task)."""
    down = _live_below(_live(user_id, Task.id == task_id), "down")
    return select(func.coalesce(func.max(down.c.level), 0))


def soft_delete(
    user_id: uuid.UUID, task_ids: Sequence[uuid.UUID], *, version: int | None
) -> Update:
    """Delete live tasks and everything live below them, in one statement; returns the ids."""
    roots = _live(user_id, Task.id.in_(task_ids))
    if version is not None:
        roots = roots.where(Task.version == version)
    subtree = _live_below(roots, "subtree")
    return (
        update(Task)
        .where(Task.id.in_(select(subtree.c.id)), Task.deleted_at.is_(None))
        .values(
            deleted_at=func.statement_timestamp(),
            version=Task.version + 1,
            updated_at=func.statement_timestamp(),
        )
        .returning(Task.id)
        .execution_options(synchronize_session=False)
    )


def deleted_subtree(user_id: uuid.UUID, task_id: uuid.UUID, *, kept_for: timedelta) -> Select[Any]:
    """A task deleted less than `kept_for` ago and what was deleted together with it below it
    (the same `deleted_at`): id, parent id and level, the task first."""
    root = (
        select(Task.id, Task.parent_id, Task.deleted_at, _FIRST)
        .where(
            Task.id == task_id,
            Task.user_id == user_id,
            Task.deleted_at
            > func.statement_timestamp() - bindparam("kept_for", kept_for, type_=Interval()),
        )
        .cte("deleted_with", recursive=True)
    )
    below = root.union_all(
        select(_OTHER.id, _OTHER.parent_id, _OTHER.deleted_at, root.c.level + 1)
        .join(root, _OTHER.parent_id == root.c.id)
        .where(_OTHER.deleted_at == root.c.deleted_at, root.c.level < MAX_WALK)
    )
    return select(below.c.id, below.c.parent_id, below.c.level).order_by(below.c.level)
