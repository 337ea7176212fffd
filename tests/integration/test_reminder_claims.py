"""Claiming due reminders: who is due when, once, and never for dead tasks."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from api.resources import Resources
from common.db.uow import UnitOfWork
from common.models import OutboxJob, Task, TaskStatus
from common.reminders.service import ReminderService
from tests.support.factories import register
from tests.support.reminders import claim
from tests.support.rows import make_task, make_user, verify_address

NOW = datetime(2030, 1, 15, 12, 0, tzinfo=UTC)


async def test_a_task_is_claimed_once_its_lead_time_begins(
    session: AsyncSession, resources: Resources
) -> None:
    user = await make_user(session, reminder_minutes_before=60)
    task = await make_task(session, user, due_date=NOW + timedelta(minutes=45))
    assert await claim(session, resources, NOW - timedelta(minutes=16)) == []
    (batch,) = await claim(session, resources, NOW - timedelta(minutes=15))
    assert batch.user_id == user.id
    assert batch.task_ids == [task.id]
    assert await claim(session, resources, NOW) == []  # never twice
    await session.refresh(task)
    assert task.reminder_sent_at == NOW - timedelta(minutes=15)


async def test_one_batch_per_user_with_all_their_due_tasks(
    session: AsyncSession, resources: Resources
) -> None:
    ada = await make_user(session)
    bob = await make_user(session, reminder_minutes_before=120)
    ada_tasks = [
        await make_task(session, ada, due_date=NOW + timedelta(minutes=m)) for m in (5, 10, 50)
    ]
    bob_task = await make_task(session, bob, due_date=NOW + timedelta(minutes=110))
    await make_task(session, ada, due_date=NOW + timedelta(minutes=90))  # not yet
    batches = await claim(session, resources, NOW)
    by_user = {batch.user_id: batch.task_ids for batch in batches}
    assert by_user == {ada.id: sorted(t.id for t in ada_tasks), bob.id: [bob_task.id]}


async def test_closed_deleted_undated_and_opted_out_tasks_get_none(
    session: AsyncSession, resources: Resources
) -> None:
    user = await make_user(session)
    soon = NOW + timedelta(minutes=10)
    await make_task(session, user, due_date=soon, status=TaskStatus.COMPLETED)
    await make_task(session, user, due_date=soon, status=TaskStatus.CANCELLED)
    await make_task(session, user, due_date=soon, deleted_at=NOW - timedelta(minutes=1))
    await make_task(session, user, due_date=None)
    opted_out = await make_user(session, reminder_minutes_before=0)
    await make_task(session, opted_out, due_date=soon)
    in_progress = await make_task(session, user, due_date=soon, status=TaskStatus.IN_PROGRESS)
    (batch,) = await claim(session, resources, NOW)
    assert batch.task_ids == [in_progress.id]


async def test_after_downtime_the_scan_catches_up_within_a_day(
    session: AsyncSession, resources: Resources
) -> None:
    user = await make_user(session)
    missed = await make_task(session, user, due_date=NOW - timedelta(hours=3))
    await make_task(session, user, due_date=NOW - timedelta(days=2))  # too old to be useful
    (batch,) = await claim(session, resources, NOW)
    assert batch.task_ids == [missed.id]


async def test_claim_and_mail_job_commit_together(
    session: AsyncSession, resources: Resources, broker
) -> None:  # type: ignore[no-untyped-def]
    user = await make_user(session)
    await make_task(session, user, due_date=NOW + timedelta(minutes=5))
    await claim(session, resources, NOW)
    assert await broker.llen("email") == 1
    (row,) = (await session.execute(select(OutboxJob))).scalars().all()
    assert row.publish_count == 1  # published; the row goes when the mail job has finished


async def test_two_scans_racing_claim_each_task_once(
    resources: Resources, committed_data: None, broker
) -> None:  # type: ignore[no-untyped-def]
    async with resources.session_factory() as session:
        users = [await make_user(session) for _ in range(5)]
        for user in users:
            for minutes in range(1, 21):
                await make_task(session, user, due_date=NOW + timedelta(minutes=minutes))
        await session.commit()

    async def scan() -> list:  # type: ignore[type-arg]
        async with resources.session_factory() as session:
            return await claim(session, resources, NOW)

    results = await asyncio.gather(*(scan() for _ in range(4)))
    claimed = [task_id for batches in results for batch in batches for task_id in batch.task_ids]
    assert len(claimed) == len(set(claimed)) == 100
    async with resources.session_factory() as session:
        unclaimed = await session.execute(select(Task.id).where(Task.reminder_sent_at.is_(None)))
        assert unclaimed.all() == []


async def test_a_scan_claims_nothing_while_another_is_claiming(
    resources: Resources, committed_data: None, broker
) -> None:  # type: ignore[no-untyped-def]
    """Row locks alone let a second beat's scan take the tasks the first has not reached
    yet: here the first stops after one of the user's three tasks (its batch limit), and the
    user must not get a second digest for the other two while it is still claiming."""
    async with resources.session_factory() as session:
        user = await make_user(session)
        for minutes in (1, 2, 3):
            await make_task(session, user, due_date=NOW + timedelta(minutes=minutes))
        await session.commit()
    async with resources.session_factory() as first_session:
        first = UnitOfWork(first_session, resources.publisher)
        (batch,) = await ReminderService(first, resources.settings).claim_due(NOW, limit=1)
        assert len(batch.task_ids) == 1
        async with resources.session_factory() as second_session:
            assert await claim(second_session, resources, NOW) == []
        await first.commit()
    async with resources.session_factory() as session:  # the next minute's scan
        (rest,) = await claim(session, resources, NOW)
    assert len(rest.task_ids) == 2


async def test_moving_the_due_date_rearms_the_reminder(
    client: httpx.AsyncClient, session: AsyncSession, resources: Resources
) -> None:
    account = await register(client)
    await verify_address(session, account)
    headers = account.headers
    due = datetime.now(UTC) + timedelta(days=2)
    created = await client.post(
        "/api/v1/tasks",
        headers=headers,
        json={"title": "Renew passport", "due_date": due.isoformat()},
    )
    assert created.status_code == 201
    task = created.json()
    (batch,) = await claim(session, resources, due - timedelta(minutes=30))
    assert batch.task_ids == [uuid.UUID(task["id"])]

    later = due + timedelta(days=1)
    moved = await client.patch(
        f"/api/v1/tasks/{task['id']}",
        headers=headers,
        json={"due_date": later.isoformat(), "version": task["version"]},
    )
    assert moved.status_code == 200
    assert await claim(session, resources, due - timedelta(minutes=30)) == []
    (again,) = await claim(session, resources, later - timedelta(minutes=30))
    assert again.task_ids == [uuid.UUID(task["id"])]

    # A title edit is no reason to remind twice.
    renamed = await client.patch(
        f"/api/v1/tasks/{task['id']}",
        headers=headers,
        json={"title": "Renew the passport", "version": moved.json()["version"]},
    )
    assert renamed.status_code == 200
    assert await claim(session, resources, later - timedelta(minutes=10)) == []
