"""No mail to an unverified address but its verification or reset link; caps on the rest.

Anyone can register with a stranger's address and write task titles of their choosing: without
these rules our worker would mail that stranger whatever the registrant likes, every minute.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from redis.asyncio import Redis
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from api.resources import Resources
from common.config import Settings
from common.models import MailQuota, Task, User
from common.reminders import service as reminders
from common.security.mail_quota import MailKind, reserve_mails
from tests.support.factories import register
from tests.support.mail_jobs import PASSWORD_RESET, VERIFICATION, mailed_tokens
from tests.support.reminders import claim, digest
from tests.support.rows import make_task, make_user

NOW = datetime(2030, 3, 4, 9, 5, tzinfo=UTC)
LINK, DIGEST = MailKind.LINK, MailKind.DIGEST


async def _claim(
    session: AsyncSession, resources: Resources, settings: Settings, now: datetime
) -> dict[str, list[str]]:
    batches = await claim(session, resources, now, settings)
    return {str(batch.user_id): [str(task_id) for task_id in batch.task_ids] for batch in batches}


async def test_an_unverified_users_due_tasks_are_never_claimed(
    session: AsyncSession, resources: Resources, settings: Settings
) -> None:
    stranger = await make_user(session, verified=False)
    task = await make_task(session, stranger, title="Buy my pills", due_date=NOW)
    assert await _claim(session, resources, settings, NOW) == {}
    await session.refresh(task)
    assert task.reminder_sent_at is None  # still due: reminded once the address is verified

    stranger.email_verified_at = NOW
    await session.flush()
    assert await _claim(session, resources, settings, NOW) == {str(stranger.id): [str(task.id)]}


async def test_the_digest_checks_the_address_again_when_it_is_sent(
    session: AsyncSession, resources: Resources
) -> None:
    """A digest job enqueued for an unverified address (by an older release, or replayed from
    the outbox) sends nothing."""
    user = await make_user(session, verified=False)
    task = await make_task(session, user, due_date=NOW)
    assert await digest(session, resources, user.id, [task.id]) is None


async def test_digests_per_user_are_capped_per_hour_and_the_rest_wait(
    session: AsyncSession, resources: Resources, settings: Settings
) -> None:
    settings = settings.model_copy(update={"digests_per_user_per_hour": 2})
    user = await make_user(session, reminder_minutes_before=5)
    tasks = [
        await make_task(session, user, due_date=NOW + timedelta(minutes=minutes))
        for minutes in (0, 10, 20, 30)
    ]
    for index in (0, 1):
        claimed = await _claim(session, resources, settings, NOW + timedelta(minutes=10 * index))
        assert claimed == {str(user.id): [str(tasks[index].id)]}
    assert await _claim(session, resources, settings, NOW + timedelta(minutes=20)) == {}
    assert await _claim(session, resources, settings, NOW + timedelta(minutes=30)) == {}
    # The next hour's first digest carries everything that came due meanwhile.
    next_hour = NOW.replace(minute=0) + timedelta(hours=1)
    claimed = await _claim(session, resources, settings, next_hour)
    assert sorted(claimed[str(user.id)]) == sorted(str(task.id) for task in tasks[2:])


async def test_a_capped_user_does_not_take_the_batch_from_everyone_else(
    session: AsyncSession,
    resources: Resources,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(reminders, "CLAIM_BATCH", 3)
    settings = settings.model_copy(update={"digests_per_user_per_hour": 1})
    flooder = await make_user(session)
    for minute in range(6):
        await make_task(session, flooder, due_date=NOW - timedelta(minutes=minute))
    assert list(await _claim(session, resources, settings, NOW)) == [str(flooder.id)]
    other = await make_user(session)
    waiting = await make_task(session, other, due_date=NOW + timedelta(minutes=1))
    # The flooder's three older due tasks would fill the batch; their owner has no digest left.
    claimed = await _claim(session, resources, settings, NOW + timedelta(minutes=1))
    assert claimed == {str(other.id): [str(waiting.id)]}


async def test_links_have_an_allowance_of_their_own_within_the_daily_one(
    client: httpx.AsyncClient,
    session: AsyncSession,
    resources: Resources,
    broker: Redis,
    configure,  # type: ignore[no-untyped-def]
) -> None:
    """Anyone who knows an address can ask for reset links to it: they spend the links'
    allowance, never the one its owner's reminders need."""
    settings = configure(
        link_mails_per_address_per_day=2, mails_per_address_per_day=3, email_rate_limit=100
    )
    account = await register(client)  # link 1: the verification mail
    for _ in range(3):  # link 2, then nothing
        response = await client.post("/api/v1/auth/forgot-password", json={"email": account.email})
        assert response.status_code == 202  # the answer never tells
    await client.post("/api/v1/auth/resend-verification", json={"email": account.email})
    assert len(await mailed_tokens(broker, settings, VERIFICATION)) == 1
    assert len(await mailed_tokens(broker, settings, PASSWORD_RESET)) == 1

    # Once the owner verifies the address, reminders still have the day's third mail.
    user = (await session.execute(select(User).where(User.email == account.email))).scalar_one()
    user.email_verified_at = now = datetime.now(UTC)
    await make_task(session, user, due_date=now)
    assert list(await _claim(session, resources, settings, now)) == [str(user.id)]
    await make_task(session, user, due_date=now + timedelta(minutes=2))
    # A fourth mail today would be over the daily cap.
    assert await _claim(session, resources, settings, now + timedelta(seconds=1)) == {}


async def test_racing_reservations_cannot_both_take_the_last_mail(
    resources: Resources, settings: Settings, committed_data: None
) -> None:
    settings = settings.model_copy(update={"mails_per_address_per_day": 1})
    address = "contested@example.com"
    async with resources.session_factory() as first, resources.session_factory() as second:
        assert await reserve_mails(first, settings, [address], now=NOW, kind=DIGEST) == {address}
        # The second reservation waits on the first's row lock, then sees its count.
        racing = asyncio.create_task(
            reserve_mails(second, settings, [address], now=NOW, kind=DIGEST)
        )
        await asyncio.sleep(0.2)
        assert not racing.done()
        await first.commit()
        assert await racing == set()
        await second.commit()
    async with resources.session_factory() as session:
        quota = await session.get(MailQuota, address)
        assert quota is not None and quota.mails_today == 1


async def test_a_new_day_and_a_new_hour_start_new_allowances(
    session: AsyncSession, settings: Settings
) -> None:
    settings = settings.model_copy(
        update={"mails_per_address_per_day": 1, "digests_per_user_per_hour": 1}
    )
    address = "daily@example.com"
    assert await reserve_mails(session, settings, [address], now=NOW, kind=DIGEST)
    assert not await reserve_mails(
        session, settings, [address], now=NOW + timedelta(hours=1), kind=LINK
    )
    tomorrow = NOW + timedelta(days=1)
    assert await reserve_mails(session, settings, [address], now=tomorrow, kind=DIGEST)
    quota = (
        await session.execute(select(MailQuota).where(MailQuota.address == address))
    ).scalar_one()
    assert (quota.day, quota.mails_today, quota.digests_this_hour) == (tomorrow.date(), 1, 1)


async def test_claimed_tasks_of_a_refused_user_stay_unclaimed(
    session: AsyncSession, resources: Resources, settings: Settings
) -> None:
    settings = settings.model_copy(update={"mails_per_address_per_day": 1})
    user = await make_user(session)
    await reserve_mails(session, settings, [user.email], now=NOW, kind=LINK)
    task = await make_task(session, user, due_date=NOW)
    assert await _claim(session, resources, settings, NOW) == {}
    assert (await session.get(Task, task.id)) is not None
    await session.refresh(task)
    assert task.reminder_sent_at is None
