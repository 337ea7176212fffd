"""Deleting an account: everything that could act on it stops at once, sign-in answers as for
an unknown address, a mailed token restores it during the grace period, and the erasure
leaves no row of it in any table (read from the metadata), in batches that survive being cut
short. The real worker erases and mails in tests/worker/."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis
from sqlalchemy import Table, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from api.resources import Resources
from common.accounts.erasure import Erasure, due_accounts, erase_account
from common.accounts.errors import NoticePending
from common.auth.tokens import action_token_for
from common.config import Settings
from common.db.outbox import OutboxRepository
from common.jobs import Job, JobName, Queue
from common.models import ActionToken, ActionTokenPurpose, User, task_categories
from common.models.base import Base
from tests.support.accounts import activity_kinds, bearer, create_token, verify
from tests.support.factories import PASSWORD, Account, login, register
from tests.support.mail_jobs import ACCOUNT_NOTICE, PASSWORD_RESET, queued_jobs

ME = "/api/v1/users/me"
RESTORE = "/api/v1/auth/restore-account"
ERASE = "taskpipe.accounts.erase"


async def _delete(
    client: httpx.AsyncClient, account: Account, password: str = PASSWORD
) -> httpx.Response:
    return await client.request("DELETE", ME, json={"password": password}, headers=account.headers)


async def _restore_token(session: AsyncSession, settings: Settings, account: Account) -> str:
    token_id = await session.scalar(
        select(ActionToken.id).where(
            ActionToken.user_id == uuid.UUID(account.user["id"]),
            ActionToken.purpose == ActionTokenPurpose.RESTORE_ACCOUNT,
        )
    )
    assert token_id is not None
    return action_token_for(settings, token_id)


async def _past_grace(session: AsyncSession, *accounts: Account) -> None:
    ids = [uuid.UUID(a.user["id"]) for a in accounts]
    await session.execute(
        update(User)
        .where(User.id.in_(ids))
        .values(erase_after=datetime.now(UTC) - timedelta(days=1))
    )
    await session.flush()


async def test_a_deleted_account_stops_everything_at_once(
    client: httpx.AsyncClient, broker: Redis, settings: Settings
) -> None:
    account = await register(client)
    await verify(client, broker, settings)
    other = (await login(client, account.email, PASSWORD)).json()
    token = await create_token(client, account, ["tasks:read"])

    response = await _delete(client, account)
    assert response.status_code == 202
    erase_after = datetime.fromisoformat(response.json()["erase_after"])
    assert timedelta(days=6, hours=23) < erase_after - datetime.now(UTC) <= timedelta(days=7)

    assert (await client.get(ME, headers=account.headers)).status_code == 401
    assert (await client.get(ME, headers=bearer(other["access_token"]))).status_code == 401
    assert (await client.get("/api/v1/tasks", headers=bearer(token["token"]))).status_code == 401
    refresh = await client.post(
        "/api/v1/auth/refresh", json={"refresh_token": other["refresh_token"]}
    )
    assert refresh.status_code == 401

    # Signing in answers exactly as for an address nobody registered.
    deleted = await login(client, account.email, PASSWORD)
    unknown = await login(client, "nobody-" + account.email, PASSWORD)
    assert deleted.status_code == unknown.status_code == 401
    assert deleted.json()["detail"] == unknown.json()["detail"]
    await client.post("/api/v1/auth/forgot-password", json={"email": account.email})
    assert await queued_jobs(broker, PASSWORD_RESET) == []
    (notice,) = await queued_jobs(broker, ACCOUNT_NOTICE)
    assert notice["user_id"] == account.user["id"]
    assert await queued_jobs(broker, ERASE, queue="maintenance") == []  # after the grace period


async def test_the_mailed_token_restores_the_account_once(
    client: httpx.AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    account = await register(client)
    assert (await _delete(client, account)).status_code == 202
    token = await _restore_token(session, settings, account)
    restored = await client.post(RESTORE, json={"token": token})
    assert restored.status_code == 200
    assert (await login(client, account.email, PASSWORD)).status_code == 200
    assert (await client.post(RESTORE, json={"token": token})).status_code == 400
    signed_in = (await login(client, account.email, PASSWORD)).json()
    kinds = await activity_kinds(client, bearer(signed_in["access_token"]))
    assert {"deletion_requested", "deletion_cancelled"} <= set(kinds)


async def test_the_token_no_longer_restores_once_the_grace_period_is_over(
    client: httpx.AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    account = await register(client)
    await _delete(client, account)
    token = await _restore_token(session, settings, account)
    await _past_grace(session, account)
    assert (await client.post(RESTORE, json={"token": token})).status_code == 400


@pytest.mark.parametrize("body", [{}, {"token": ""}, {"token": "x" * 43}, {"token": "x", "id": 1}])
async def test_bad_restore_requests_are_400(
    client: httpx.AsyncClient, body: dict[str, Any]
) -> None:
    assert (await client.post(RESTORE, json=body)).status_code == 400


async def test_a_wrong_password_deletes_nothing(client: httpx.AsyncClient) -> None:
    account = await register(client)
    wrong = await _delete(client, account, password="Wrong-Guess-1")
    assert wrong.status_code == 400 and wrong.json()["errors"][0]["field"] == "password"
    assert (await client.request("DELETE", ME, json={}, headers=account.headers)).status_code == 400
    assert (await client.request("DELETE", ME, headers=account.headers)).status_code == 400
    assert (await client.get(ME, headers=account.headers)).status_code == 200


async def test_the_address_stays_taken_until_the_erasure(client: httpx.AsyncClient) -> None:
    account = await register(client)
    await _delete(client, account)
    again = await client.post(
        "/api/v1/auth/register",
        json={"email": account.email, "password": PASSWORD, "full_name": "Someone"},
    )
    assert again.status_code == 409


async def test_without_a_grace_period_the_erasure_is_enqueued_at_once(
    client: httpx.AsyncClient, broker: Redis, session: AsyncSession, configure: Any
) -> None:
    configure(account_deletion_grace_days=0)
    account = await register(client)
    assert (await _delete(client, account)).status_code == 202
    (job,) = await queued_jobs(broker, ERASE, queue="maintenance")
    assert job == {"user_id": account.user["id"]}
    restore = await session.scalar(
        select(func.count())
        .select_from(ActionToken)
        .where(ActionToken.purpose == ActionTokenPurpose.RESTORE_ACCOUNT)
    )
    assert restore == 0


# Erasure --------------------------------------------------------------------------------------


async def _seed(client: httpx.AsyncClient, account: Account) -> None:
    """A bit of everything an account owns."""
    headers = account.headers
    category = (
        await client.post("/api/v1/categories", json={"name": "Work"}, headers=headers)
    ).json()
    for number in range(5):
        task = (
            await client.post(
                "/api/v1/tasks",
                json={"title": f"Task {number}"},
                headers={**headers, "Idempotency-Key": str(uuid.uuid4())},
            )
        ).json()
        await client.post(
            f"/api/v1/tasks/{task['id']}/categories/{category['id']}", headers=headers
        )
    await client.delete(f"/api/v1/tasks/{task['id']}", headers=headers)
    await create_token(client, account, ["tasks:read"])
    await client.post("/api/v1/users/me/exports", headers=headers)
    await login(client, account.email, "Wrong-Guess-1")


async def _rows_by_owner(session: AsyncSession, user_id: str) -> dict[str, int]:
    """Rows with this owner in every table that has a `user_id` column, from the metadata (so
    tables added by other branches are checked too)."""
    counts = {}
    for table in Base.metadata.sorted_tables:
        if "user_id" in table.c:
            counts[table.name] = await _count(session, table, user_id)
    return counts


async def _count(session: AsyncSession, table: Table, user_id: str) -> int:
    count = await session.scalar(
        select(func.count()).select_from(table).where(table.c.user_id == uuid.UUID(user_id))
    )
    return int(count or 0)


async def test_the_erasure_leaves_nothing_of_the_account_and_touches_no_one_else(
    client: httpx.AsyncClient, session: AsyncSession, test_resources: Resources
) -> None:
    doomed, bystander = await register(client), await register(client)
    await _seed(client, doomed)
    await _seed(client, bystander)
    before = await _rows_by_owner(session, bystander.user["id"])
    links_before = await session.scalar(select(func.count()).select_from(task_categories))
    assert (await _delete(client, doomed)).status_code == 202
    owned = await _rows_by_owner(session, doomed.user["id"])
    assert owned["tasks"] == 5 and owned["categories"] == 1 and owned["account_events"] > 0

    not_yet = await erase_account(
        test_resources.unit_of_work, uuid.UUID(doomed.user["id"]), batch_size=2
    )
    assert not_yet is Erasure.NOT_DUE
    await _past_grace(session, doomed)
    assert await due_accounts(test_resources.unit_of_work(), limit=10) == [
        uuid.UUID(doomed.user["id"])
    ]

    outcome = await erase_account(
        test_resources.unit_of_work, uuid.UUID(doomed.user["id"]), batch_size=2
    )
    assert outcome is Erasure.ERASED
    assert set((await _rows_by_owner(session, doomed.user["id"])).values()) == {0}
    assert await session.get(User, uuid.UUID(doomed.user["id"])) is None
    assert await _rows_by_owner(session, bystander.user["id"]) == before
    links_after = await session.scalar(select(func.count()).select_from(task_categories))
    assert links_after == (links_before or 0) - 5  # the doomed account's links only
    again = await erase_account(
        test_resources.unit_of_work, uuid.UUID(doomed.user["id"]), batch_size=2
    )
    assert again is Erasure.NOT_DUE


async def test_an_erasure_cut_short_hands_on_and_the_next_run_finishes(
    client: httpx.AsyncClient, session: AsyncSession, test_resources: Resources, broker: Redis
) -> None:
    account = await register(client)
    await _seed(client, account)
    await _delete(client, account)
    await _past_grace(session, account)
    user_id = uuid.UUID(account.user["id"])

    first = await erase_account(test_resources.unit_of_work, user_id, batch_size=2, max_batches=2)
    assert first is Erasure.CONTINUED
    owned = await _rows_by_owner(session, account.user["id"])
    assert (owned["tasks"], owned["categories"]) == (1, 1)  # two batches of live tasks done
    assert await session.get(User, user_id) is not None  # the user row goes last
    (job,) = await queued_jobs(broker, ERASE, queue="maintenance")
    assert job == {"user_id": str(user_id)}

    assert await erase_account(test_resources.unit_of_work, user_id, batch_size=2) is Erasure.ERASED
    assert set((await _rows_by_owner(session, account.user["id"])).values()) == {0}


async def test_the_user_row_waits_for_a_notice_still_in_the_outbox(
    client: httpx.AsyncClient, session: AsyncSession, test_resources: Resources
) -> None:
    account = await register(client)
    await _delete(client, account)
    await _past_grace(session, account)
    notice = Job(
        JobName.SEND_ACCOUNT_NOTICE, Queue.EMAIL, {"event_id": "e", "user_id": account.user["id"]}
    )
    OutboxRepository(session).add(notice, redeliver_after=timedelta(minutes=10))
    await session.flush()
    user_id = uuid.UUID(account.user["id"])
    with pytest.raises(NoticePending):
        await erase_account(test_resources.unit_of_work, user_id, batch_size=10)
    assert await session.get(User, user_id) is not None
    await session.execute(
        update(User)
        .where(User.id == user_id)
        .values(deletion_requested_at=datetime.now(UTC) - timedelta(hours=2))
    )
    await session.flush()
    assert (
        await erase_account(test_resources.unit_of_work, user_id, batch_size=10) is Erasure.ERASED
    )
