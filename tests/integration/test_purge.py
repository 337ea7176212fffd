"""The purge removes what nobody can see any more, in bounded batches, and nothing else."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from api.resources import Resources
from common.maintenance.purge import purge_expired_rows
from common.models import (
    AccountEvent,
    ActionToken,
    ActionTokenPurpose,
    ActivityKind,
    Category,
    MailQuota,
    PersonalAccessToken,
    RefreshToken,
    RefreshTokenFamily,
    SentEmail,
    Task,
    task_categories,
)
from tests.support.rows import make_task, make_user

NOW = datetime.now(UTC)
RETENTION = timedelta(days=30)


async def _count(session: AsyncSession, column) -> int:  # type: ignore[no-untyped-def]
    return (await session.execute(select(func.count(column)))).scalar_one()


async def test_purge_removes_only_old_deleted_tasks_and_their_links(
    session: AsyncSession, test_resources: Resources
) -> None:
    user = await make_user(session)
    category = Category(user_id=user.id, name="Work")
    session.add(category)
    old = [await make_task(session, user, deleted_at=NOW - timedelta(days=31)) for _ in range(5)]
    recent = await make_task(session, user, deleted_at=NOW - timedelta(days=29))
    live = await make_task(session, user)
    for task in [*old, recent, live]:
        await session.execute(
            insert(task_categories).values(task_id=task.id, category_id=category.id)
        )
    await session.commit()

    report = await purge_expired_rows(
        test_resources.unit_of_work, now=NOW, retention=RETENTION, batch_size=2
    )

    assert report["tasks"] == 5
    remaining = set((await session.execute(select(Task.id))).scalars())
    assert remaining == {recent.id, live.id}
    links = set((await session.execute(select(task_categories.c.task_id))).scalars())
    assert links == {recent.id, live.id}
    assert await _count(session, Category.id) == 1  # categories stay


async def test_purge_stops_after_max_batches(
    session: AsyncSession, test_resources: Resources
) -> None:
    user = await make_user(session)
    for _ in range(7):
        await make_task(session, user, deleted_at=NOW - timedelta(days=40))
    await session.commit()
    report = await purge_expired_rows(
        test_resources.unit_of_work, now=NOW, retention=RETENTION, batch_size=2, max_batches=2
    )
    assert report["tasks"] == 4
    assert await _count(session, Task.id) == 3


async def test_purge_removes_expired_tokens_and_old_mail_records(
    session: AsyncSession, test_resources: Resources
) -> None:
    user = await make_user(session)
    old_family = RefreshTokenFamily(
        id=uuid.uuid4(), user_id=user.id, created_at=NOW - timedelta(days=40)
    )
    live_family = RefreshTokenFamily(id=uuid.uuid4(), user_id=user.id)
    session.add_all([old_family, live_family])
    await session.flush()
    session.add_all(
        [
            RefreshToken(
                family_id=old_family.id, token_hash="a" * 64, expires_at=NOW - timedelta(days=1)
            ),
            RefreshToken(
                family_id=live_family.id, token_hash="b" * 64, expires_at=NOW + timedelta(days=1)
            ),
            ActionToken(
                user_id=user.id,
                purpose=ActionTokenPurpose.VERIFY_EMAIL,
                token_hash="c" * 64,
                expires_at=NOW - timedelta(hours=1),
            ),
            ActionToken(
                user_id=user.id,
                purpose=ActionTokenPurpose.RESET_PASSWORD,
                token_hash="d" * 64,
                expires_at=NOW + timedelta(hours=1),
            ),
            SentEmail(
                idempotency_key="old",
                message_id="<old@taskpipe.local>",
                attempted_at=NOW - timedelta(days=31),
                sent_at=NOW - timedelta(days=31),
            ),
            SentEmail(
                idempotency_key="new",
                message_id="<new@taskpipe.local>",
                attempted_at=NOW - timedelta(days=1),
            ),
        ]
    )
    await session.commit()
    report = await purge_expired_rows(
        test_resources.unit_of_work, now=NOW, retention=RETENTION, batch_size=100
    )
    assert report == {
        "tasks": 0,
        "refresh_tokens": 1,
        "action_tokens": 1,
        "sent_emails": 1,
        "refresh_token_families": 1,
        "idempotency_keys": 0,
        "personal_access_tokens": 0,
        "account_exports": 0,
        "account_events": 0,
        "mail_quotas": 0,
        "change_feed": 0,
    }
    assert set((await session.execute(select(RefreshTokenFamily.id))).scalars()) == {live_family.id}
    assert set((await session.execute(select(SentEmail.idempotency_key))).scalars()) == {"new"}


async def test_purge_removes_old_activity_expired_personal_tokens_and_spent_mail_quotas(
    session: AsyncSession, test_resources: Resources
) -> None:
    user = await make_user(session)
    session.add_all(
        [
            AccountEvent(
                user_id=user.id, kind=ActivityKind.LOGIN, created_at=NOW - timedelta(days=91)
            ),
            AccountEvent(
                user_id=user.id, kind=ActivityKind.LOGIN, created_at=NOW - timedelta(days=89)
            ),
            PersonalAccessToken(
                user_id=user.id,
                name="old",
                token_hash="a" * 64,
                scopes=["tasks:read"],
                expires_at=NOW - timedelta(seconds=1),
            ),
            PersonalAccessToken(
                user_id=user.id,
                name="live",
                token_hash="b" * 64,
                scopes=["tasks:read"],
                expires_at=NOW + timedelta(days=1),
            ),
            MailQuota(
                address="yesterday@example.com",
                day=(NOW - timedelta(days=1)).date(),
                mails_today=3,
                links_today=1,
                hour=NOW - timedelta(hours=20),
                digests_this_hour=0,
            ),
            MailQuota(
                address="today@example.com",
                day=NOW.date(),
                mails_today=3,
                links_today=1,
                hour=NOW.replace(minute=0, second=0, microsecond=0),
                digests_this_hour=1,
            ),
        ]
    )
    await session.commit()
    report = await purge_expired_rows(
        test_resources.unit_of_work,
        now=NOW,
        retention=RETENTION,
        batch_size=10,
        activity_retention=timedelta(days=90),
    )
    assert report["account_events"] == 1
    assert report["personal_access_tokens"] == 1
    assert report["mail_quotas"] == 1
    names = set((await session.execute(select(PersonalAccessToken.name))).scalars())
    assert names == {"live"}
    addresses = set((await session.execute(select(MailQuota.address))).scalars())
    assert addresses == {"today@example.com"}
