"""Domain changes: what a service records in the unit of work when a user's data changed.

A service says what happened (`uow.record(TaskChanged(...))`); who reacts to it is wired once
per process (`common.subscribers`): in the change's transaction (rows that must commit or roll
back with it) or after the commit (caches, anything outside PostgreSQL). A new reaction is a
new subscriber there, not an edit of every service that changes data.
"""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass


class ChangeKind(enum.StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    DELETED = "deleted"
    RESTORED = "restored"
    """Back from the trash (a task and the subtree deleted with it)."""


@dataclass(frozen=True, slots=True)
class DomainChange:
    user_id: uuid.UUID
    """Whose data changed (every task and category has one owner)."""


@dataclass(frozen=True, slots=True)
class TaskChanged(DomainChange):
    task_id: uuid.UUID
    kind: ChangeKind
    completed: bool = False
    """This change made the task `completed` (webhooks tell `task.completed` from an update)."""


@dataclass(frozen=True, slots=True)
class CategoryChanged(DomainChange):
    category_id: uuid.UUID
    kind: ChangeKind
