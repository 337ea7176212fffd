"""Helpers for the account routes: personal access tokens, sessions, the activity log."""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import orjson
from fastapi import FastAPI
from redis.asyncio import Redis

from common.config import Settings
from tests.support.factories import Account
from tests.support.mail_jobs import VERIFICATION, mailed_tokens

TOKENS = "/api/v1/users/me/tokens"
ACTIVITY = "/api/v1/users/me/activity"
ALL_SCOPES = [
    "tasks:read",
    "tasks:write",
    "categories:read",
    "categories:write",
    "account:read",
    "webhooks:read",
    "webhooks:write",
]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def create_token(
    client: httpx.AsyncClient,
    account: Account,
    scopes: list[str] | None = None,
    *,
    name: str = "script",
    expires_in_days: int = 30,
) -> dict[str, Any]:
    """A new personal access token of `account` (the whole answer, secret included)."""
    response = await client.post(
        TOKENS,
        json={"name": name, "scopes": scopes or ALL_SCOPES, "expires_in_days": expires_in_days},
        headers=account.headers,
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def activity_kinds(client: httpx.AsyncClient, headers: dict[str, str]) -> list[str]:
    """The kinds of the caller's activity events, newest first."""
    response = await client.get(ACTIVITY, headers=headers, params={"limit": 100})
    assert response.status_code == 200, response.text
    return [event["kind"] for event in response.json()["items"]]


@asynccontextmanager
async def client_from(
    app: FastAPI, address: str, user_agent: str = "pytest-client/1.0"
) -> AsyncIterator[httpx.AsyncClient]:
    """A client calling from `address` (as the server sees it behind a trusted proxy)."""
    transport = httpx.ASGITransport(app=app, client=(address, 40000))
    headers = {"User-Agent": user_agent}
    async with httpx.AsyncClient(
        transport=transport, base_url="http://testserver", headers=headers
    ) as client:
        yield client


async def verify(client: httpx.AsyncClient, broker: Redis, settings: Settings) -> None:
    """Follow the newest verification link queued (the last account registered)."""
    token = (await mailed_tokens(broker, settings, VERIFICATION))[-1]
    response = await client.get("/api/v1/auth/verify-email", params={"token": token})
    assert response.status_code == 200, response.text


def open_archive(data: bytes) -> tuple[dict[str, Any], list[dict[str, str]]]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert sorted(archive.namelist()) == ["taskpipe-export.json", "tasks.csv"]
        document = orjson.loads(archive.read("taskpipe-export.json"))
        rows = list(csv.DictReader(io.StringIO(archive.read("tasks.csv").decode())))
    return document, rows
