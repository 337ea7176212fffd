"""The activity log: security events with time, network and user agent, written with what
they record, only the owner's, paged, and kept for the retention period."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from redis.asyncio import Redis
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from common.config import Settings
from common.models import AccountEvent
from tests.support.accounts import ACTIVITY, activity_kinds, bearer, client_from, create_token
from tests.support.factories import PASSWORD, login, register, unique_email
from tests.support.mail_jobs import PASSWORD_RESET, mailed_tokens

LOGOUT = "/api/v1/auth/logout"


async def test_sign_ins_failures_and_the_lockout_are_recorded(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    account = await register(client)
    async with client_from(app, "198.51.100.77", "Guesser/0.1") as guesser:
        statuses = [
            (await login(guesser, account.email, "Wrong-Guess-1")).status_code for _ in range(7)
        ]
    assert statuses == [401] * 5 + [423, 423]
    assert (await login(client, account.email, PASSWORD)).status_code == 200

    page = (await client.get(ACTIVITY, headers=account.headers)).json()
    kinds = [event["kind"] for event in page["items"]]
    # One lockout event, however often the locked account is tried afterwards.
    assert kinds == ["login", "lockout"] + ["login_failed"] * 5
    failed = page["items"][-1]
    assert failed["ip_network"] == "198.51.100.0/24"
    assert failed["user_agent"] == "Guesser/0.1"
    assert "198.51.100.77" not in str(page)
    assert datetime.fromisoformat(failed["created_at"]) > datetime.now(UTC) - timedelta(minutes=1)


async def test_a_failed_sign_in_of_an_unknown_address_records_nothing(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    before = await session.scalar(select(func.count()).select_from(AccountEvent))
    assert (await login(client, unique_email(), PASSWORD)).status_code == 401
    assert await session.scalar(select(func.count()).select_from(AccountEvent)) == before


async def test_activity_is_the_owners_only_and_pages_newest_first(
    client: httpx.AsyncClient,
) -> None:
    owner, stranger = await register(client), await register(client)
    for _ in range(5):
        await login(client, owner.email, PASSWORD)
    assert await activity_kinds(client, stranger.headers) == []

    first = (await client.get(ACTIVITY, headers=owner.headers, params={"limit": 2})).json()
    assert len(first["items"]) == 2 and first["next_before"] == first["items"][-1]["id"]
    seen = [event["id"] for event in first["items"]]
    cursor = first["next_before"]
    while cursor:
        page = (
            await client.get(ACTIVITY, headers=owner.headers, params={"limit": 2, "before": cursor})
        ).json()
        seen += [event["id"] for event in page["items"]]
        cursor = page["next_before"]
    assert len(seen) == len(set(seen)) == 5

    # Another user's event id is no cursor of yours.
    stranger_event = uuid.uuid4()
    response = await client.get(ACTIVITY, headers=owner.headers, params={"before": stranger_event})
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "before"


@pytest.mark.parametrize(
    "params", [{"limit": 0}, {"limit": 101}, {"limit": "x"}, {"before": "not-a-uuid"}]
)
async def test_bad_activity_queries_are_400(
    client: httpx.AsyncClient, params: dict[str, Any]
) -> None:
    account = await register(client)
    assert (await client.get(ACTIVITY, headers=account.headers, params=params)).status_code == 400


async def test_a_token_with_account_read_sees_activity_and_its_creation_is_there(
    client: httpx.AsyncClient,
) -> None:
    account = await register(client)
    created = await create_token(client, account, ["account:read"])
    events = (await client.get(ACTIVITY, headers=bearer(created["token"]))).json()["items"]
    assert events[0]["kind"] == "token_created"
    assert events[0]["detail"] == {"token_id": created["id"], "name": "script"}
    without = await create_token(client, account, ["tasks:read"])
    assert (await client.get(ACTIVITY, headers=bearer(without["token"]))).status_code == 403


async def test_events_past_the_retention_are_not_shown(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    account = await register(client)
    await login(client, account.email, PASSWORD)
    await session.execute(
        update(AccountEvent).values(created_at=datetime.now(UTC) - timedelta(days=91))
    )
    await session.flush()
    assert await activity_kinds(client, account.headers) == []


async def test_a_logout_and_a_password_reset_are_recorded(
    client: httpx.AsyncClient, broker: Redis, settings: Settings
) -> None:
    account = await register(client)
    other = (await login(client, account.email, PASSWORD)).json()
    assert (await client.post(LOGOUT, headers=bearer(other["access_token"]))).status_code == 204
    await client.post("/api/v1/auth/forgot-password", json={"email": account.email})
    (token,) = await mailed_tokens(broker, settings, PASSWORD_RESET)
    reset = await client.post(
        "/api/v1/auth/reset-password", json={"token": token, "new_password": "Brand-New-Secret-7"}
    )
    assert reset.status_code == 200
    signed_in = (await login(client, account.email, "Brand-New-Secret-7")).json()
    events = (await client.get(ACTIVITY, headers=bearer(signed_in["access_token"]))).json()["items"]
    kinds = [event["kind"] for event in events]
    assert kinds[:2] == ["login", "password_reset"]
    ended = next(event for event in events if event["kind"] == "session_ended")
    assert ended["detail"]["reason"] == "logout"
