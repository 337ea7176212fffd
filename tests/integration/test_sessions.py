"""Sessions as their owner sees them: listed with network and user agent, ended one by one or
all but the current one, stopping at once."""

from __future__ import annotations

import uuid

import httpx
from fastapi import FastAPI

from tests.support.accounts import bearer, client_from
from tests.support.factories import PASSWORD, Account, login, register

SESSIONS = "/api/v1/users/me/sessions"
ME = "/api/v1/users/me"
REFRESH = "/api/v1/auth/refresh"


async def _sign_in(client: httpx.AsyncClient, account: Account) -> dict[str, str]:
    response = await login(client, account.email, PASSWORD)
    assert response.status_code == 200, response.text
    body: dict[str, str] = response.json()
    return body


async def test_sessions_are_listed_with_network_agent_and_the_current_one(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    account = await register(client)
    async with client_from(app, "198.51.100.23", "Laptop/2.0") as laptop:
        from_laptop = await _sign_in(laptop, account)
    async with client_from(app, "2001:db8:aa:bb:1:2:3:4", "Phone/1.0") as phone:
        from_phone = await _sign_in(phone, account)

    listed = (await client.get(SESSIONS, headers=bearer(from_laptop["access_token"]))).json()
    sessions = listed["items"]
    assert len(sessions) == 3  # registration, laptop, phone
    by_agent = {s["user_agent"]: s for s in sessions}
    assert by_agent["Laptop/2.0"]["ip_network"] == "198.51.100.0/24"
    assert by_agent["Laptop/2.0"]["current"] is True
    assert by_agent["Phone/1.0"]["ip_network"] == "2001:db8:aa:bb::/64"
    assert by_agent["Phone/1.0"]["current"] is False
    assert [s["current"] for s in sessions].count(True) == 1
    assert "198.51.100.23" not in str(listed) and "1:2:3:4" not in str(listed)

    # A refresh is a use: the phone's session moves to the top.
    await client.post(REFRESH, json={"refresh_token": from_phone["refresh_token"]})
    again = (await client.get(SESSIONS, headers=account.headers)).json()["items"]
    assert again[0]["user_agent"] == "Phone/1.0"
    assert again[0]["last_used_at"] > again[0]["created_at"]


async def test_ending_a_session_stops_its_tokens_at_once(client: httpx.AsyncClient) -> None:
    account = await register(client)
    other = await _sign_in(client, account)
    other_headers = bearer(other["access_token"])
    sessions = (await client.get(SESSIONS, headers=account.headers)).json()["items"]
    (target,) = [s for s in sessions if not s["current"]]
    assert (await client.get(ME, headers=other_headers)).status_code == 200

    ended = await client.delete(f"{SESSIONS}/{target['id']}", headers=account.headers)
    assert ended.status_code == 204
    assert (await client.get(ME, headers=other_headers)).status_code == 401
    refresh = await client.post(REFRESH, json={"refresh_token": other["refresh_token"]})
    assert refresh.status_code == 401
    assert (await client.get(ME, headers=account.headers)).status_code == 200
    listed = (await client.get(SESSIONS, headers=account.headers)).json()["items"]
    assert [s["current"] for s in listed] == [True]
    again = await client.delete(f"{SESSIONS}/{target['id']}", headers=account.headers)
    assert again.status_code == 404


async def test_ending_every_other_session_keeps_the_current_one(client: httpx.AsyncClient) -> None:
    account = await register(client)
    others = [await _sign_in(client, account) for _ in range(3)]
    response = await client.delete(SESSIONS, headers=account.headers)
    assert response.status_code == 204
    for other in others:
        assert (await client.get(ME, headers=bearer(other["access_token"]))).status_code == 401
    assert (await client.get(ME, headers=account.headers)).status_code == 200
    listed = (await client.get(SESSIONS, headers=account.headers)).json()["items"]
    assert len(listed) == 1 and listed[0]["current"]


async def test_ending_the_current_session_is_a_logout(client: httpx.AsyncClient) -> None:
    account = await register(client)
    (current,) = (await client.get(SESSIONS, headers=account.headers)).json()["items"]
    response = await client.delete(f"{SESSIONS}/{current['id']}", headers=account.headers)
    assert response.status_code == 204
    assert (await client.get(ME, headers=account.headers)).status_code == 401


async def test_another_users_session_is_404_and_stays(client: httpx.AsyncClient) -> None:
    owner, stranger = await register(client), await register(client)
    (session,) = (await client.get(SESSIONS, headers=owner.headers)).json()["items"]
    response = await client.delete(f"{SESSIONS}/{session['id']}", headers=stranger.headers)
    assert response.status_code == 404
    assert (
        await client.delete(f"{SESSIONS}/{uuid.uuid4()}", headers=owner.headers)
    ).status_code == 404
    assert (await client.get(ME, headers=owner.headers)).status_code == 200


async def test_session_routes_refuse_bad_ids_and_missing_credentials(
    client: httpx.AsyncClient,
) -> None:
    account = await register(client)
    malformed = await client.delete(f"{SESSIONS}/not-a-uuid", headers=account.headers)
    assert malformed.status_code == 400
    assert (await client.get(SESSIONS)).status_code == 401
    assert (await client.delete(SESSIONS)).status_code == 401
