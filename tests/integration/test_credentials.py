"""Changing the password and the address: the current password asked for (and counted like a
sign-in), other sessions ended, the address changed only by the link mailed to it, notices
only to verified addresses, and every abuse limited."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from common.config import Settings
from common.models import ActionToken, ActionTokenPurpose
from tests.support.accounts import activity_kinds, bearer, verify
from tests.support.factories import PASSWORD, Account, login, register, unique_email
from tests.support.mail_jobs import ACCOUNT_NOTICE, EMAIL_CHANGE, mailed_tokens, queued_jobs

PASSWORD_ROUTE = "/api/v1/users/me/password"
EMAIL_ROUTE = "/api/v1/users/me/email"
CONFIRM = "/api/v1/auth/confirm-email-change"
ME = "/api/v1/users/me"
NEW_PASSWORD = "Brand-New-Secret-7"


async def _other_session(client: httpx.AsyncClient, account: Account) -> dict[str, str]:
    response = await login(client, account.email, account.password)
    assert response.status_code == 200
    return bearer(response.json()["access_token"])


async def _change_password(
    client: httpx.AsyncClient, account: Account, current: str = PASSWORD, new: str = NEW_PASSWORD
) -> httpx.Response:
    return await client.post(
        PASSWORD_ROUTE,
        json={"current_password": current, "new_password": new},
        headers=account.headers,
    )


async def _change_email(
    client: httpx.AsyncClient, account: Account, new_email: str, password: str = PASSWORD
) -> httpx.Response:
    return await client.post(
        EMAIL_ROUTE, json={"new_email": new_email, "password": password}, headers=account.headers
    )


# Password -----------------------------------------------------------------------------------


async def test_changing_the_password_ends_the_other_sessions_and_notifies(
    client: httpx.AsyncClient, broker: Redis, settings: Settings
) -> None:
    account = await register(client)
    await verify(client, broker, settings)
    other = await _other_session(client, account)

    assert (await _change_password(client, account)).status_code == 204
    assert (await client.get(ME, headers=other)).status_code == 401
    assert (await client.get(ME, headers=account.headers)).status_code == 200
    assert (await login(client, account.email, PASSWORD)).status_code == 401
    assert (await login(client, account.email, NEW_PASSWORD)).status_code == 200

    kinds = await activity_kinds(client, account.headers)
    assert "password_changed" in kinds
    (notice,) = await queued_jobs(broker, ACCOUNT_NOTICE)
    assert notice["user_id"] == account.user["id"]


async def test_an_unverified_account_gets_no_notice(
    client: httpx.AsyncClient, broker: Redis
) -> None:
    account = await register(client)
    assert (await _change_password(client, account)).status_code == 204
    assert await queued_jobs(broker, ACCOUNT_NOTICE) == []


async def test_a_wrong_current_password_is_400_and_counts_toward_the_lockout(
    client: httpx.AsyncClient,
) -> None:
    account = await register(client)
    statuses = []
    for _ in range(6):
        response = await _change_password(client, account, current="Wrong-Guess-1")
        statuses.append(response.status_code)
    assert statuses == [400] * 5 + [423]
    wrong = await _change_password(client, account, current="Wrong-Guess-1")
    assert wrong.status_code == 423 and "retry-after" in wrong.headers
    # The same network is locked out of signing in too, whatever the password.
    assert (await login(client, account.email, PASSWORD)).status_code == 423
    kinds = await activity_kinds(client, account.headers)
    assert kinds[:2] == ["lockout", "login_failed"] and kinds.count("login_failed") == 5


async def test_a_wrong_current_password_names_its_field(client: httpx.AsyncClient) -> None:
    account = await register(client)
    response = await _change_password(client, account, current="Wrong-Guess-1")
    problem = response.json()
    assert problem["type"] == "urn:taskpipe:problem:wrong-password"
    assert problem["errors"][0]["field"] == "current_password"


@pytest.mark.parametrize(
    "body",
    [
        {"current_password": PASSWORD, "new_password": "short"},
        {"current_password": PASSWORD, "new_password": "alllowercaseletters"},
        {"current_password": PASSWORD, "new_password": "Ä" * 40 + "a1"},  # > 72 bytes
        {"current_password": PASSWORD},
        {"new_password": NEW_PASSWORD},
        {"current_password": PASSWORD, "new_password": NEW_PASSWORD, "user_id": "x"},
        {"current_password": 7, "new_password": NEW_PASSWORD},
    ],
)
async def test_bad_password_changes_are_400_and_change_nothing(
    client: httpx.AsyncClient, body: dict[str, Any]
) -> None:
    account = await register(client)
    response = await client.post(PASSWORD_ROUTE, json=body, headers=account.headers)
    assert response.status_code == 400
    assert (await login(client, account.email, PASSWORD)).status_code == 200


# Address ------------------------------------------------------------------------------------


async def test_the_address_changes_only_when_the_mailed_link_is_followed(
    client: httpx.AsyncClient, broker: Redis, settings: Settings
) -> None:
    account = await register(client)
    await verify(client, broker, settings)
    other = await _other_session(client, account)
    new_email = unique_email("moved")

    response = await _change_email(client, account, new_email.upper())
    assert response.status_code == 202
    me = (await client.get(ME, headers=account.headers)).json()
    assert me["email"] == account.email
    (notice,) = await queued_jobs(broker, ACCOUNT_NOTICE)
    assert notice["user_id"] == account.user["id"]
    (token,) = await mailed_tokens(broker, settings, EMAIL_CHANGE)

    confirmed = await client.get(CONFIRM, params={"token": token})
    assert confirmed.status_code == 200
    user = confirmed.json()
    assert user["email"] == new_email and user["is_active"] is True

    # Every session but the one that asked ends; the old address signs in no more.
    assert (await client.get(ME, headers=other)).status_code == 401
    assert (await client.get(ME, headers=account.headers)).status_code == 200
    assert (await login(client, account.email, PASSWORD)).status_code == 401
    assert (await login(client, new_email, PASSWORD)).status_code == 200
    again = await client.post(CONFIRM, json={"token": token})
    assert again.status_code == 400
    kinds = await activity_kinds(client, account.headers)
    assert {"email_change_requested", "email_changed"} <= set(kinds)


async def test_an_unverified_old_address_gets_no_notice_but_the_new_one_its_link(
    client: httpx.AsyncClient, broker: Redis, settings: Settings
) -> None:
    account = await register(client)
    assert (await _change_email(client, account, unique_email())).status_code == 202
    assert await queued_jobs(broker, ACCOUNT_NOTICE) == []
    assert len(await mailed_tokens(broker, settings, EMAIL_CHANGE)) == 1


async def test_an_address_taken_now_or_by_the_time_of_the_link_is_409(
    client: httpx.AsyncClient, broker: Redis, settings: Settings
) -> None:
    account, neighbour = await register(client), await register(client)
    taken = await _change_email(client, account, neighbour.email)
    assert taken.status_code == 409

    wanted = unique_email("wanted")
    assert (await _change_email(client, account, wanted)).status_code == 202
    (token,) = await mailed_tokens(broker, settings, EMAIL_CHANGE)
    await register(client, email=wanted)  # someone else gets there first
    late = await client.post(CONFIRM, json={"token": token})
    assert late.status_code == 409
    assert late.json()["type"] == "urn:taskpipe:problem:email-already-registered"
    assert (await client.get(ME, headers=account.headers)).json()["email"] == account.email


async def test_a_password_change_cancels_a_pending_address_change(
    client: httpx.AsyncClient, broker: Redis, settings: Settings
) -> None:
    account = await register(client)
    assert (await _change_email(client, account, unique_email())).status_code == 202
    (token,) = await mailed_tokens(broker, settings, EMAIL_CHANGE)
    assert (await _change_password(client, account)).status_code == 204
    assert (await client.post(CONFIRM, json={"token": token})).status_code == 400


async def test_an_expired_or_forged_link_is_400(
    client: httpx.AsyncClient, broker: Redis, settings: Settings, session: AsyncSession
) -> None:
    account = await register(client)
    assert (await _change_email(client, account, unique_email())).status_code == 202
    (token,) = await mailed_tokens(broker, settings, EMAIL_CHANGE)
    await session.execute(
        update(ActionToken)
        .where(ActionToken.purpose == ActionTokenPurpose.CHANGE_EMAIL)
        .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
    )
    await session.flush()
    expired = await client.get(CONFIRM, params={"token": token})
    assert expired.status_code == 400
    assert expired.json()["errors"][0]["loc"] == ["query", "token"]
    for forged in ["x", "A" * 43, str(uuid.uuid4())]:
        assert (await client.post(CONFIRM, json={"token": forged})).status_code == 400
    assert (await client.post(CONFIRM, json={})).status_code == 400


@pytest.mark.parametrize(
    "body",
    [
        {"new_email": "not-an-address", "password": PASSWORD},
        {"new_email": "a@example.com"},
        {"password": PASSWORD},
        {"new_email": "a" * 320 + "@example.com", "password": PASSWORD},
        {"new_email": "a@example.com", "password": PASSWORD, "email_verified_at": "now"},
    ],
)
async def test_bad_address_changes_are_400(client: httpx.AsyncClient, body: dict[str, Any]) -> None:
    account = await register(client)
    response = await client.post(EMAIL_ROUTE, json=body, headers=account.headers)
    assert response.status_code == 400


async def test_the_same_address_or_a_wrong_password_is_400(client: httpx.AsyncClient) -> None:
    account = await register(client)
    same = await _change_email(client, account, account.email.upper())
    assert same.status_code == 400 and same.json()["errors"][0]["field"] == "new_email"
    wrong = await _change_email(client, account, unique_email(), password="Wrong-Guess-1")
    assert wrong.status_code == 400 and wrong.json()["errors"][0]["field"] == "password"


async def test_address_changes_are_limited_per_account(client: httpx.AsyncClient) -> None:
    """Otherwise a signed-in stranger could make us mail any address, again and again."""
    account = await register(client)
    statuses = [
        (await _change_email(client, account, unique_email())).status_code for _ in range(4)
    ]
    assert statuses == [202, 202, 202, 429]


async def test_the_target_addresses_link_allowance_bounds_the_links_it_gets(
    client: httpx.AsyncClient, configure: Any
) -> None:
    configure(link_mails_per_address_per_day=1)
    target = unique_email("target")
    first, second = await register(client), await register(client)
    assert (await _change_email(client, first, target)).status_code == 202
    refused = await _change_email(client, second, target)
    assert refused.status_code == 429
    assert refused.json()["type"] == "urn:taskpipe:problem:address-mail-allowance-spent"


async def test_a_reset_token_confirms_no_address(
    client: httpx.AsyncClient, broker: Redis, settings: Settings
) -> None:
    account = await register(client)
    await client.post("/api/v1/auth/forgot-password", json={"email": account.email})
    tokens = await mailed_tokens(broker, settings, "taskpipe.email.send_password_reset")
    assert tokens
    assert (await client.post(CONFIRM, json={"token": tokens[-1]})).status_code == 400
