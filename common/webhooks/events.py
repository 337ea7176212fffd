"""Webhook events: what a domain change becomes, who subscribed to it, and its exact body.

`write_deliveries` is an in-transaction subscriber (`common.subscribers`): every change that
an enabled endpoint subscribed to becomes a `webhook_deliveries` row and an outbox job in the
change's own transaction, so an event is owed exactly when the change committed. The body is
written then, as the data looked at that moment, and every attempt sends those same bytes.

A body is `{"type", "timestamp", "data"}` (the Standard Webhooks convention): `data` is the
task or category as the API shows it, or only its `id` once it is deleted. One change of an
entity gives one event, even when a request changed it twice: completing a task is
`task.completed` (not also `task.updated`), a task created and changed in one request is
`task.created`.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncSession

from common.categories.repository import CategoryRepository
from common.categories.schemas import render_category
from common.db.changes import CategoryChanged, ChangeKind, DomainChange, TaskChanged
from common.db.uow import UnitOfWork
from common.errors import InvalidInput
from common.jobs import JobName, Queue
from common.tasks.views import render_task
from common.webhooks.repository import WebhookRepository

MAX_PAYLOAD_BYTES = 64 * 1024
"""A body larger than this (a task with hundreds of categories) is sent with `data` reduced
to the id and `"truncated": true`: receivers fetch the rest from the API."""
RETRY_PERIOD = timedelta(hours=24)
"""How long a delivery is retried after its event (or its redelivery)."""


class EventType(StrEnum):
    TASK_CREATED = "task.created"
    TASK_UPDATED = "task.updated"
    TASK_COMPLETED = "task.completed"
    TASK_DELETED = "task.deleted"
    CATEGORY_CREATED = "category.created"
    CATEGORY_UPDATED = "category.updated"
    CATEGORY_DELETED = "category.deleted"
    TEST = "webhook.test"
    """Sent by `POST /webhooks/{id}/test` only; nobody subscribes to it."""


WILDCARDS = ("task.*", "category.*")
SUBSCRIBABLE = tuple(event.value for event in EventType if event is not EventType.TEST) + WILDCARDS

_TASK_EVENTS = {
    ChangeKind.CREATED: EventType.TASK_CREATED,
    ChangeKind.UPDATED: EventType.TASK_UPDATED,
    ChangeKind.DELETED: EventType.TASK_DELETED,
}
_CATEGORY_EVENTS = {
    ChangeKind.CREATED: EventType.CATEGORY_CREATED,
    ChangeKind.UPDATED: EventType.CATEGORY_UPDATED,
    ChangeKind.DELETED: EventType.CATEGORY_DELETED,
}
# Of two changes of one entity in one transaction, the one that says more wins.
_PRECEDENCE = [
    EventType.TASK_DELETED,
    EventType.TASK_CREATED,
    EventType.TASK_COMPLETED,
    EventType.TASK_UPDATED,
    EventType.CATEGORY_DELETED,
    EventType.CATEGORY_CREATED,
    EventType.CATEGORY_UPDATED,
]


def subscriptions(events: Iterable[str]) -> list[str]:
    """A subscription list as stored: known names and wildcards, each once, sorted; 400
    naming the first unknown one."""
    chosen = set()
    for event in events:
        if event not in SUBSCRIBABLE:
            raise InvalidInput(
                f"{event[:50]!r} is not an event (choose from {', '.join(SUBSCRIBABLE)})",
                field="events",
            )
        chosen.add(event)
    if not chosen:
        raise InvalidInput("subscribe to at least one event", field="events")
    return sorted(chosen)


def subscribed(events: Sequence[str], event: EventType) -> bool:
    return event in events or f"{event.partition('.')[0]}.*" in events


@dataclass(frozen=True, slots=True)
class Event:
    user_id: uuid.UUID
    type: EventType
    subject_id: uuid.UUID
    """The task's or category's id."""


def events_of(changes: Sequence[DomainChange]) -> list[Event]:
    """One event per changed task or category; kinds without an event are left out."""
    found: dict[uuid.UUID, Event] = {}
    for change in changes:
        if isinstance(change, TaskChanged):
            subject = change.task_id
            kind = _TASK_EVENTS.get(change.kind)
            if kind is EventType.TASK_UPDATED and change.completed:
                kind = EventType.TASK_COMPLETED
        elif isinstance(change, CategoryChanged):
            subject, kind = change.category_id, _CATEGORY_EVENTS.get(change.kind)
        else:
            continue
        earlier = found.get(subject)
        if kind is not None and (
            earlier is None or _PRECEDENCE.index(kind) < _PRECEDENCE.index(earlier.type)
        ):
            found[subject] = Event(change.user_id, kind, subject)
    return list(found.values())


def render_body(event: EventType, data: bytes | dict[str, Any], at: datetime) -> str:
    """The exact body of a delivery; `data` as JSON bytes (sent verbatim) or a dict."""
    content = orjson.Fragment(data) if isinstance(data, bytes) else data
    body = orjson.dumps(
        {"type": event.value, "timestamp": at, "data": content}, option=orjson.OPT_UTC_Z
    )
    return body.decode()


async def _data(session: AsyncSession, events: Sequence[Event]) -> dict[uuid.UUID, bytes]:
    """Each live subject's representation, as the API renders it (deleted ones have none)."""
    task_ids = [event.subject_id for event in events if event.type.startswith("task.")]
    rows = await WebhookRepository(session).tasks_as_shown(task_ids) if task_ids else []
    data = {row.id: render_task(row) for row in rows}
    categories = CategoryRepository(session)
    for event in events:
        if event.type in (EventType.CATEGORY_CREATED, EventType.CATEGORY_UPDATED):
            category = await categories.get_with_count(event.user_id, event.subject_id)
            if category is not None:
                data[event.subject_id] = render_category(category)
    return data


def body_for(event: Event, data: bytes | None, at: datetime) -> str:
    """The event's body: its subject as shown, or only its id (deleted, gone, too large)."""
    thin: dict[str, Any] = {"id": str(event.subject_id)}
    if data is None:
        return render_body(event.type, thin, at)
    body = render_body(event.type, data, at)
    if len(body) > MAX_PAYLOAD_BYTES:
        return render_body(event.type, {**thin, "truncated": True}, at)
    return body


async def write_deliveries(uow: UnitOfWork, changes: Sequence[DomainChange]) -> None:
    """Owe every subscribed endpoint its events, in the changes' transaction (one indexed
    query when the owners have no webhooks, which is almost always)."""
    events = events_of(changes)
    if not events:
        return
    repository = WebhookRepository(uow.session)
    endpoints = await repository.active_subscriptions({event.user_id for event in events})
    owed = [
        (event, endpoint_id)
        for event in events
        for endpoint_id, owner, subscribed_to in endpoints
        if owner == event.user_id and subscribed(subscribed_to, event.type)
    ]
    if not owed:
        return
    data = await _data(uow.session, list({event for event, _ in owed}))
    now = datetime.now(UTC)
    bodies = {event: body_for(event, data.get(event.subject_id), now) for event, _ in owed}
    deliveries: list[dict[str, Any]] = [
        {
            "id": uuid.uuid4(),
            "user_id": event.user_id,
            "endpoint_id": endpoint_id,
            "event": event.type.value,
            "payload": bodies[event],
            "retry_until": now + RETRY_PERIOD,
            "created_at": now,
        }
        for event, endpoint_id in owed
    ]
    await repository.add_deliveries(deliveries)
    for delivery in deliveries:
        enqueue_delivery(uow, delivery["id"], round=1)


def enqueue_delivery(uow: UnitOfWork, delivery_id: uuid.UUID, *, round: int) -> None:
    uow.enqueue(JobName.DELIVER_WEBHOOK, Queue.WEBHOOKS, delivery_id=str(delivery_id), round=round)
