"""Email verification, resend, forgot and reset password, at the API level.

The mailed token is an HMAC of the action-token id, so the test rebuilds it from the id in the
job's arguments (exactly what the worker does) instead of reading a mail. The mails themselves
are tested with a real worker and SMTP server in tests/worker and tests/e2e.
"""

from __future__ import annotations

import httpx
import pytest
from redis.asyncio import Redis

from common.config import Settings
from tests.support.factories import PASSWORD, login, register
from tests.support.mail_jobs import PASSWORD_RESET, VERIFICATION, mailed_tokens

VERIFY = "/api/v1/auth/verify-email"
RESEND = "/api/v1/auth/resend-verification"
FORGOT = "/api/v1/auth/forgot-password"
RESET = "/api/v1/auth/reset-password"
NEW_PASSWORD = "Brand-New-Secret-7"


async def _verification_token(broker: Redis, settings: Settings) -> str:
    return (await mailed_tokens(broker, settings, VERIFICATION))[-1]


async def _reset_token(broker: Redis, settings: Settings) -> str:
    return (await mailed_tokens(broker, settings, PASSWORD_RESET))[-1]


async def test_following_the_link_activates_the_account_once(
    client: httpx.AsyncClient, broker: Redis, settings: Settings
) -> None:
    account = await register(client)
    token = await _verification_token(broker, settings)
    response = await client.get(VERIFY, params={"token": token})
    assert response.status_code == 200
    assert response.json()["is_active"] is True
    me = (await client.get("/api/v1/users/me", headers=account.headers)).json()
    assert me["is_active"] is True
    assert me["email_verified_at"] is not None
    again = await client.get(VERIFY, params={"token": token})
    assert again.status_code == 400
    assert again.json()["errors"][0]["field"] == "token"


async def test_verify_by_post_with_a_json_token(
    client: httpx.AsyncClient, broker: Redis, settings: Settings
) -> None:
    await register(client)
    token = await _verification_token(broker, settings)
    assert (await client.post(VERIFY, json={"token": token})).status_code == 200


@pytest.mark.parametrize("token", ["", "nope", "x" * 3000])
async def test_verify_with_a_bad_token_is_400(client: httpx.AsyncClient, token: str) -> None:
    assert (await client.get(VERIFY, params={"token": token})).status_code == 400
    assert (await client.post(VERIFY, json={"token": token})).status_code == 400


async def test_verify_with_an_expired_token_is_400(
    client: httpx.AsyncClient, broker: Redis, settings: Settings, configure
) -> None:  # type: ignore[no-untyped-def]
    await register(client)
    token = await _verification_token(broker, settings)
    from sqlalchemy import text

    from api.resources import Resources

    resources: Resources = client._transport.app.state.resources  # type: ignore[attr-defined]
    async with resources.session_factory() as session:
        await session.execute(
            text("UPDATE action_tokens SET expires_at = now() - interval '1 second'")
        )
        await session.commit()
    assert (await client.get(VERIFY, params={"token": token})).status_code == 400


async def test_resend_mails_a_new_link_and_retires_the_old_one(
    client: httpx.AsyncClient, broker: Redis, settings: Settings
) -> None:
    account = await register(client)
    old = await _verification_token(broker, settings)
    response = await client.post(RESEND, json={"email": account.email})
    assert response.status_code == 202
    new = await _verification_token(broker, settings)
    assert new != old
    assert (await client.get(VERIFY, params={"token": old})).status_code == 400
    assert (await client.get(VERIFY, params={"token": new})).status_code == 200


async def test_resend_never_reveals_whether_an_account_exists(
    client: httpx.AsyncClient, broker: Redis
) -> None:
    unknown = await client.post(RESEND, json={"email": "nobody@example.com"})
    assert unknown.status_code == 202
    assert await broker.llen("email") == 0


async def test_resend_is_rate_limited_per_address_silently(
    client: httpx.AsyncClient, broker: Redis, configure
) -> None:  # type: ignore[no-untyped-def]
    account = await register(client)
    configure(email_rate_limit=2)
    for _ in range(4):
        assert (await client.post(RESEND, json={"email": account.email})).status_code == 202
    assert await broker.llen("email") == 1 + 2  # the registration mail and two resends


async def test_forgot_password_always_202_and_mails_only_real_accounts(
    client: httpx.AsyncClient, broker: Redis
) -> None:
    account = await register(client)
    await broker.delete("email")
    unknown = await client.post(FORGOT, json={"email": "ghost@example.com"})
    known = await client.post(FORGOT, json={"email": account.email})
    assert unknown.status_code == known.status_code == 202
    assert unknown.json() == known.json()
    assert await broker.llen("email") == 1


async def test_reset_password_changes_it_and_ends_every_session(
    client: httpx.AsyncClient, broker: Redis, settings: Settings
) -> None:
    account = await register(client)
    await client.post(FORGOT, json={"email": account.email})
    token = await _reset_token(broker, settings)
    response = await client.post(RESET, json={"token": token, "new_password": NEW_PASSWORD})
    assert response.status_code == 200
    assert (await client.get("/api/v1/users/me", headers=account.headers)).status_code == 401
    refresh = await client.post(
        "/api/v1/auth/refresh", json={"refresh_token": account.refresh_token}
    )
    assert refresh.status_code == 401
    assert (await login(client, account.email, PASSWORD)).status_code == 401
    fresh = await login(client, account.email, NEW_PASSWORD)
    assert fresh.status_code == 200
    headers = {"Authorization": f"Bearer {fresh.json()['access_token']}"}
    assert (await client.get("/api/v1/users/me", headers=headers)).status_code == 200
    reused = await client.post(RESET, json={"token": token, "new_password": "Another-Secret-8"})
    assert reused.status_code == 400


async def test_reset_password_enforces_the_password_rules(
    client: httpx.AsyncClient, broker: Redis, settings: Settings
) -> None:
    account = await register(client)
    await client.post(FORGOT, json={"email": account.email})
    token = await _reset_token(broker, settings)
    for weak in ["short", "a" * 80, "Aa1-" + "x" * 69]:
        response = await client.post(RESET, json={"token": token, "new_password": weak})
        assert response.status_code == 400
        assert response.json()["errors"][0]["field"] == "new_password"
    assert (
        await client.post(RESET, json={"token": token, "new_password": NEW_PASSWORD})
    ).status_code == 200


async def test_a_verification_token_is_no_reset_token(
    client: httpx.AsyncClient, broker: Redis, settings: Settings
) -> None:
    await register(client)
    token = await _verification_token(broker, settings)
    response = await client.post(RESET, json={"token": token, "new_password": NEW_PASSWORD})
    assert response.status_code == 400


async def test_token_guessing_on_reset_and_verify_is_rate_limited_per_ip(
    client: httpx.AsyncClient, configure
) -> None:  # type: ignore[no-untyped-def]
    configure(login_rate_limit=3)
    for _ in range(3):
        response = await client.post(RESET, json={"token": "bogus", "new_password": NEW_PASSWORD})
        assert response.status_code == 400
    limited = await client.post(RESET, json={"token": "bogus", "new_password": NEW_PASSWORD})
    assert limited.status_code == 429
    assert (await client.get(VERIFY, params={"token": "bogus"})).status_code == 429
