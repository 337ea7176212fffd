"""Login, lockout, rate limits, refresh rotation, logout and hostile tokens."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from common.config import Settings
from tests.support import tokens
from tests.support.factories import PASSWORD, Account, login, register, unique_email

ME = "/api/v1/users/me"
REFRESH = "/api/v1/auth/refresh"
LOGOUT = "/api/v1/auth/logout"


async def test_login_returns_a_working_token_pair(client: httpx.AsyncClient) -> None:
    account = await register(client)
    response = await login(client, account.email.upper(), PASSWORD)
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 3600
    me = await client.get(ME, headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.status_code == 200
    assert me.json()["email"] == account.email


async def test_wrong_password_and_unknown_email_get_the_same_401(client: httpx.AsyncClient) -> None:
    account = await register(client)
    wrong = await login(client, account.email, "Wrong-Password-1")
    unknown = await login(client, unique_email(), PASSWORD)
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json()["detail"] == unknown.json()["detail"]
    assert (
        wrong.json()["type"] == unknown.json()["type"] == "urn:taskpipe:problem:invalid-credentials"
    )


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"email": "a@example.com"},
        {"email": "nope", "password": "x"},
        {"email": "a@example.com", "password": ""},
        {"email": "a@example.com", "password": "x", "remember": True},
        {"email": ["a@example.com"], "password": "x"},
    ],
)
async def test_login_bad_input_is_400(client: httpx.AsyncClient, body: dict[str, object]) -> None:
    response = await client.post("/api/v1/auth/login", json=body)
    assert response.status_code == 400


async def test_five_failures_lock_the_account_with_423(client: httpx.AsyncClient) -> None:
    account = await register(client)
    for _ in range(5):
        assert (await login(client, account.email, "Wrong-Password-1")).status_code == 401
    locked = await login(client, account.email, PASSWORD)  # even the right password
    assert locked.status_code == 423
    assert locked.json()["type"] == "urn:taskpipe:problem:account-locked"
    assert 0 < int(locked.headers["Retry-After"]) <= 900
    other = await register(client)
    assert (await login(client, other.email, PASSWORD)).status_code == 200


async def test_a_success_clears_earlier_failures(client: httpx.AsyncClient) -> None:
    account = await register(client)
    for _ in range(4):
        await login(client, account.email, "Wrong-Password-1")
    assert (await login(client, account.email, PASSWORD)).status_code == 200
    for _ in range(4):
        await login(client, account.email, "Wrong-Password-1")
    assert (await login(client, account.email, PASSWORD)).status_code == 200


async def test_login_is_rate_limited_per_ip_with_headers(
    client: httpx.AsyncClient, configure
) -> None:  # type: ignore[no-untyped-def]
    account = await register(client)
    configure(login_rate_limit=3)
    for _ in range(3):
        assert (await login(client, account.email, PASSWORD)).status_code == 200
    limited = await login(client, account.email, PASSWORD)
    assert limited.status_code == 429
    assert limited.headers["content-type"] == "application/problem+json"
    assert int(limited.headers["Retry-After"]) >= 1
    assert limited.headers["RateLimit-Limit"] == "3"
    assert limited.headers["RateLimit-Remaining"] == "0"
    assert int(limited.headers["RateLimit-Reset"]) >= 1


async def test_refresh_rotates_and_reuse_revokes_the_family(client: httpx.AsyncClient) -> None:
    account = await register(client)
    first = await client.post(REFRESH, json={"refresh_token": account.refresh_token})
    assert first.status_code == 200
    rotated = first.json()
    assert rotated["refresh_token"] != account.refresh_token
    second = await client.post(REFRESH, json={"refresh_token": rotated["refresh_token"]})
    assert second.status_code == 200
    newest = second.json()

    # The first, retired token comes back: someone copied it. The whole session ends.
    reuse = await client.post(REFRESH, json={"refresh_token": account.refresh_token})
    assert reuse.status_code == 401
    assert reuse.headers["WWW-Authenticate"] == "Bearer"
    assert (
        await client.post(REFRESH, json={"refresh_token": newest["refresh_token"]})
    ).status_code == 401
    me = await client.get(ME, headers={"Authorization": f"Bearer {newest['access_token']}"})
    assert me.status_code == 401


async def test_refresh_rejects_an_access_token_and_garbage(client: httpx.AsyncClient) -> None:
    account = await register(client)
    for token in [account.access_token, "garbage", "a.b.c", "x" * 2048]:
        response = await client.post(REFRESH, json={"refresh_token": token})
        assert response.status_code == 401, token


async def test_refresh_with_an_expired_token_is_401(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    account = await register(client)
    past = datetime.now(UTC) - timedelta(days=60)
    expired = tokens.signed(
        settings,
        tokens.claims(
            account.user["id"],
            token_type="refresh",
            iat=int(past.timestamp()),
            exp=int((past + timedelta(days=30)).timestamp()),
        ),
    )
    response = await client.post(REFRESH, json={"refresh_token": expired})
    assert response.status_code == 401
    assert response.json()["detail"] == "Token has expired"


async def test_a_well_signed_refresh_token_unknown_to_the_database_is_401(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    account = await register(client)
    stranger = tokens.signed(settings, tokens.claims(account.user["id"], token_type="refresh"))
    assert (await client.post(REFRESH, json={"refresh_token": stranger})).status_code == 401


async def test_logout_ends_the_session_at_once(client: httpx.AsyncClient) -> None:
    account = await register(client)
    other_session = (await login(client, account.email)).json()
    response = await client.post(LOGOUT, json={"refresh_token": account.refresh_token})
    assert response.status_code == 204
    assert (await client.get(ME, headers=account.headers)).status_code == 401
    assert (
        await client.post(REFRESH, json={"refresh_token": account.refresh_token})
    ).status_code == 401
    # Logging out twice is harmless; other sessions of the same account live on.
    assert (
        await client.post(LOGOUT, json={"refresh_token": account.refresh_token})
    ).status_code == 204
    headers = {"Authorization": f"Bearer {other_session['access_token']}"}
    assert (await client.get(ME, headers=headers)).status_code == 200


async def test_logout_with_an_invalid_token_is_401(client: httpx.AsyncClient) -> None:
    assert (await client.post(LOGOUT, json={"refresh_token": "nope"})).status_code == 401
    assert (await client.post(LOGOUT, json={})).status_code == 400


def _hostile_access_tokens(settings: Settings, account: Account) -> dict[str, str]:
    uid = account.user["id"]
    past = datetime.now(UTC) - timedelta(hours=2)
    return {
        "alg none": tokens.alg_none(tokens.claims(uid)),
        "bad signature": tokens.signed(settings, tokens.claims(uid), secret="not-the-secret-" * 3),
        "expired": tokens.signed(
            settings,
            tokens.claims(
                uid, iat=int(past.timestamp()), exp=int((past + timedelta(hours=1)).timestamp())
            ),
        ),
        "refresh as access": account.refresh_token,
        "wrong issuer": tokens.signed(settings, tokens.claims(uid, iss="someone-else")),
        "no type": tokens.signed(settings, tokens.claims(uid, type=None)),
        "no expiry": tokens.signed(settings, tokens.claims(uid, exp=None)),
        "subject not a uuid": tokens.signed(settings, tokens.claims("'; DROP TABLE users;--")),
        "malformed": "not.a.jwt",
        "empty segments": "..",
        "tampered payload": account.access_token[:-4] + "AAAA",
    }


async def test_hostile_access_tokens_get_401_with_www_authenticate(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    account = await register(client)
    for name, token in _hostile_access_tokens(settings, account).items():
        response = await client.get(ME, headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 401, name
        assert response.headers["WWW-Authenticate"] == "Bearer", name
        assert response.headers["content-type"] == "application/problem+json", name


@pytest.mark.parametrize("header", [None, "", "Bearer", "Basic dXNlcjpwdw==", "Token abc"])
async def test_missing_or_wrong_scheme_is_401(
    client: httpx.AsyncClient, header: str | None
) -> None:
    headers = {} if header is None else {"Authorization": header}
    response = await client.get(ME, headers=headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"


async def test_a_valid_token_for_a_deleted_account_is_401(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    ghost = tokens.signed(settings, tokens.claims(str(uuid.uuid4())))
    assert (await client.get(ME, headers={"Authorization": f"Bearer {ghost}"})).status_code == 401


async def test_concurrent_guesses_cannot_outrun_the_lockout(live_client: httpx.AsyncClient) -> None:
    import asyncio

    account = await register(live_client)
    guesses = [login(live_client, account.email, f"Wrong-Password-{i}") for i in range(18)]
    statuses = [response.status_code for response in await asyncio.gather(*guesses)]
    assert statuses.count(401) <= 5  # never more password checks than the limit allows
    assert statuses.count(423) >= 13
    assert (await login(live_client, account.email, PASSWORD)).status_code == 423
