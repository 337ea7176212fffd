from __future__ import annotations

import httpx
import pytest

from tests.support.factories import register

ME = "/api/v1/users/me"


async def test_get_me_shows_the_profile_and_defaults(client: httpx.AsyncClient) -> None:
    account = await register(client, full_name="Grace Hopper")
    body = (await client.get(ME, headers=account.headers)).json()
    assert body["full_name"] == "Grace Hopper"
    assert body["reminder_minutes_before"] == 60
    assert body["timezone"] == "UTC"
    assert body["is_active"] is False


async def test_patch_me_changes_only_what_is_sent(client: httpx.AsyncClient) -> None:
    account = await register(client)
    response = await client.patch(
        ME, headers=account.headers, json={"timezone": "Europe/Paris", "reminder_minutes_before": 0}
    )
    assert response.status_code == 200
    body = response.json()
    assert body["timezone"] == "Europe/Paris"
    assert body["reminder_minutes_before"] == 0
    assert body["full_name"] == "Ada Lovelace"
    again = (
        await client.patch(ME, headers=account.headers, json={"full_name": "  Ada L.  "})
    ).json()
    assert again["full_name"] == "Ada L."
    assert again["timezone"] == "Europe/Paris"


@pytest.mark.parametrize(
    "body",
    [
        {"timezone": "Mars/Olympus_Mons"},
        {"timezone": "../../etc/passwd"},
        {"reminder_minutes_before": -1},
        {"reminder_minutes_before": "soon"},
        {"reminder_minutes_before": 10**9},
        {"full_name": ""},
        {"full_name": "x" * 101},
        {"email": "new@example.com"},
        {"is_active": True},
    ],
)
async def test_patch_me_rejects_bad_input(
    client: httpx.AsyncClient, body: dict[str, object]
) -> None:
    account = await register(client)
    response = await client.patch(ME, headers=account.headers, json=body)
    assert response.status_code == 400
    assert response.json()["errors"]


async def test_me_requires_a_token(client: httpx.AsyncClient) -> None:
    assert (await client.get(ME)).status_code == 401
    assert (await client.patch(ME, json={"full_name": "x"})).status_code == 401


@pytest.mark.parametrize(
    "body",
    [
        {"timezone": "America"},
        {"timezone": "Europe/"},
        {"full_name": "Ada\u0000Lovelace"},
        {"full_name": "Ada\nL"},
    ],
)
async def test_patch_me_refuses_what_would_otherwise_break_storage(
    client: httpx.AsyncClient, body: dict[str, object]
) -> None:
    account = await register(client)
    response = await client.patch(ME, headers=account.headers, json=body)
    assert response.status_code == 400


async def test_register_refuses_control_characters_in_the_name(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/v1/auth/register",
        json={"email": "nul@example.com", "password": "Correct-Horse-9", "full_name": "A\u0000B"},
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "full_name"
