"""Reminders end to end: beat's scan through a real worker to a real SMTP server."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from api.resources import Resources
from tests.support.rows import make_task, make_user
from tests.support.smtp import MailCatcher, html_part, text_part
from tests.support.worker import WorkerProcess

pytestmark = pytest.mark.worker


def _run_scan(now: datetime) -> None:
    from worker.app import app as celery_app

    celery_app.send_task("taskpipe.reminders.scan", kwargs={"now": now.isoformat()}, queue="email")


async def test_a_due_task_gets_exactly_one_reminder_at_the_right_time(
    resources: Resources, committed_data: None, mailbox: MailCatcher, celery_worker: WorkerProcess
) -> None:
    due = datetime.now(UTC).replace(microsecond=0) + timedelta(days=3)
    async with resources.session_factory() as session:
        user = await make_user(session, reminder_minutes_before=30, timezone="Europe/Paris")
        await make_task(session, user, title="Ship <the> release", due_date=due)
        await session.commit()

    _run_scan(due - timedelta(minutes=31))  # before the lead time: nothing
    _run_scan(due - timedelta(minutes=29))  # inside it: one mail
    _run_scan(due - timedelta(minutes=10))  # later scans: nothing more
    (mail,) = await asyncio.to_thread(mailbox.wait_for, user.email, 1, 30.0)
    await asyncio.sleep(2)
    assert len(mailbox.to(user.email)) == 1
    assert mail["Subject"].startswith('Reminder: "Ship <the> release" is due')
    local = due.astimezone(ZoneInfo("Europe/Paris"))
    assert local.strftime("%H:%M") in text_part(mail)
    assert "Europe/Paris" in text_part(mail)
    assert "Ship &lt;the&gt; release" in html_part(mail)


async def test_many_tasks_due_together_make_one_digest(
    resources: Resources, committed_data: None, mailbox: MailCatcher, celery_worker: WorkerProcess
) -> None:
    due = datetime.now(UTC) + timedelta(days=5)
    async with resources.session_factory() as session:
        user = await make_user(session)
        for index in range(12):
            await make_task(
                session, user, title=f"Task number {index}", due_date=due + timedelta(minutes=index)
            )
        await session.commit()
    _run_scan(due)
    (mail,) = await asyncio.to_thread(mailbox.wait_for, user.email, 1, 30.0)
    await asyncio.sleep(1)
    assert len(mailbox.to(user.email)) == 1
    assert mail["Subject"] == "Reminder: 12 tasks are due soon"
    body = text_part(mail)
    assert all(f"Task number {index}" in body for index in range(12))
