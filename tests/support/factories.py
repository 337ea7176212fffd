"""Small helpers that create what tests need through the public API."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import httpx

PASSWORD = "Correct-Horse-9"
_counter = itertools.count(1)


def unique_email(prefix: str = "user") -> str:
    return f"{prefix}{next(_counter)}@example.com"


@dataclass
class Account:
    email: str
    password: str
    access_token: str
    refresh_token: str
    user: dict[str, Any]

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}


async def register(
    client: httpx.AsyncClient,
    *,
    email: str | None = None,
    password: str = PASSWORD,
    full_name: str = "Ada Lovelace",
) -> Account:
    email = email or unique_email()
    response = await client.post(
        "/api/v1/auth/register",
        json={"email": email, "password": password, "full_name": full_name},
    )
    assert response.status_code == 201, response.text
    body = response.json()
    return Account(email, password, body["access_token"], body["refresh_token"], body["user"])


async def login(client: httpx.AsyncClient, email: str, password: str = PASSWORD) -> httpx.Response:
    return await client.post("/api/v1/auth/login", json={"email": email, "password": password})


async def refreshed(client: httpx.AsyncClient, refresh_token: str, times: int = 1) -> str:
    """Rotate a session's refresh token `times` times; the newest refresh token."""
    for _ in range(times):
        response = await client.post("/api/v1/auth/refresh", json={"refresh_token": refresh_token})
        assert response.status_code == 200, response.text
        refresh_token = response.json()["refresh_token"]
    return refresh_token
