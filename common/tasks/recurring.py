"""Recurring tasks: attaching a rule, and where a completed or skipped occurrence leads.

A recurring task is one occurrence of its series. Completing it creates the next occurrence,
a task of its own (so its reminder, its history and its webhooks are its own), in the same
transaction and at most once: the new row points at the completed one through a unique column,
so two racing completions, or a completion repeated after a reopen, create one. Skipping moves
the task itself to its next occurrence. The series (rule, start and zone) travels with every
occurrence, so COUNT and UNTIL end it wherever it has got to.

The rule is evaluated in the zone of the user's profile when it was attached, and the series
starts at the due date it was attached to (`common.recurrence` says why both are stored).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from common.errors import InvalidInput
from common.models import OPEN_STATUSES, TaskStatus
from common.recurrence import FIELD, check_series, next_occurrence, parse_rule
from common.tasks.errors import NotRecurring, OccurrenceNotOpen, SeriesEnded, TaskNotFound
from common.tasks.occurrences import OccurrenceRepository, SeriesRow
from common.tasks.views import TaskRow
from common.users.repository import UserRepository

NOT_RECURRING: dict[str, Any] = {
    "recurrence": None,
    "recurrence_start": None,
    "recurrence_zone": None,
}


def just_completed(task: TaskRow) -> bool:
    """The write that returned `task` is the one that completed it: `completed_at` is set to
    the writing statement's timestamp, as `updated_at` is (an earlier completion's is older)."""
    return bool(task.status is TaskStatus.COMPLETED and task.completed_at == task.updated_at)


def _next_due(series: SeriesRow, after: datetime) -> datetime | None:
    return next_occurrence(
        parse_rule(series.recurrence),
        series_start=series.recurrence_start,
        after=after,
        zone=ZoneInfo(series.recurrence_zone),
    )


class RecurringTasks:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session
        self._occurrences = OccurrenceRepository(session)

    async def series_columns(
        self, user_id: uuid.UUID, rule_text: str, due_date: datetime | None
    ) -> dict[str, Any]:
        """The columns that attach `rule_text` to a task due at `due_date`, its series starting
        there, in the user's zone; 400 naming the part of the rule that is wrong."""
        rule = parse_rule(rule_text)
        if due_date is None:
            raise InvalidInput("a recurring task needs a due_date", field=FIELD)
        user = await UserRepository(self._session).get(user_id)
        zone = ZoneInfo(user.timezone if user is not None else "UTC")
        check_series(rule, series_start=due_date, zone=zone, now=datetime.now(UTC))
        return {"recurrence": str(rule), "recurrence_start": due_date, "recurrence_zone": zone.key}

    async def update_columns(
        self, user_id: uuid.UUID, task_id: uuid.UUID, changes: dict[str, Any]
    ) -> dict[str, Any]:
        """`changes` of a PATCH with the series columns it implies: a new rule starts a new
        series at the (new) due date, `null` ends the series, the same rule keeps it going;
        a recurring task keeps a due date."""
        if "recurrence" not in changes and changes.get("due_date", True) is not None:
            return changes
        changes = dict(changes)
        current = await self._occurrences.series(user_id, task_id)
        if current is None:
            raise TaskNotFound()
        due_date = changes.get("due_date", current.due_date)
        rule_text = changes.pop("recurrence", current.recurrence)
        if rule_text is None:
            return {**changes, **NOT_RECURRING} if current.recurrence else changes
        if str(parse_rule(rule_text)) != current.recurrence:
            return {**changes, **await self.series_columns(user_id, rule_text, due_date)}
        if due_date is None:
            raise InvalidInput(
                "a recurring task needs a due date; set recurrence to null first",
                field="due_date",
            )
        return changes

    async def continue_series(self, user_id: uuid.UUID, completed: TaskRow) -> uuid.UUID | None:
        """Create the occurrence after `completed`, unless the series ended or it exists."""
        series = await self._occurrences.series(user_id, completed.id)
        due = None if series is None else _next_due(series, completed.due_date)
        return None if due is None else await self._occurrences.insert_next(completed.id, due)

    async def next_of(self, user_id: uuid.UUID, task: TaskRow) -> TaskRow | None:
        """The occurrence created by completing `task`, if it is one and there is one."""
        if task.recurrence is None or task.status is not TaskStatus.COMPLETED:
            return None
        return await self._occurrences.next_of(user_id, task.id)

    async def skip_target(self, user_id: uuid.UUID, task_id: uuid.UUID) -> tuple[datetime, int]:
        """Where skipping the task moves its due date, and the version that was read."""
        series = await self._occurrences.series(user_id, task_id)
        if series is None:
            raise TaskNotFound()
        if series.recurrence is None:
            raise NotRecurring()
        if series.status not in OPEN_STATUSES:
            raise OccurrenceNotOpen()
        due = _next_due(series, series.due_date)
        if due is None:
            raise SeriesEnded(series.recurrence)
        return due, int(series.version)
