"""Helpers for webhook tests: an API client with chosen webhook settings and DNS, and
creating endpoints through the API."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from fastapi import FastAPI

from api.resources import Resources
from api.routers.webhooks import get_resolver
from tests.support.factories import Account, register
from tests.support.rows import verify_address
from tests.support.webhook_receiver import FakeDNS

WEBHOOKS = "/api/v1/webhooks"
PUBLIC_HOST = "hooks.example.com"
PUBLIC_ADDRESS = "93.184.215.14"
PUBLIC_URL = f"https://{PUBLIC_HOST}/taskpipe"
DNS = {
    PUBLIC_HOST: [PUBLIC_ADDRESS],
    "loopback.example.com": ["127.0.0.1"],
    "metadata.example.com": ["169.254.169.254"],
    "private.example.com": ["10.0.0.1"],
    "mixed.example.com": [PUBLIC_ADDRESS, "10.0.0.1"],
}
"""Names the real DNS does not have here; `FakeDNS` answers them (nothing else is asked)."""


@asynccontextmanager
async def webhook_client(
    app: FastAPI, resources: Resources, dns: FakeDNS | None = None, **settings: Any
) -> AsyncIterator[httpx.AsyncClient]:
    """A client of `app` on `resources` with these settings changed, resolving names with
    `dns` (the table above by default)."""
    changed = resources.settings.model_copy(update=settings)
    app.state.resources = dataclasses.replace(resources, settings=changed)
    resolver = dns or FakeDNS(DNS)
    app.dependency_overrides[get_resolver] = lambda: resolver
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client
    finally:
        app.dependency_overrides.pop(get_resolver, None)
        app.state.resources = None


async def webhook_owner(client: httpx.AsyncClient, resources: Resources) -> Account:
    """A registered account whose address is verified (only those create webhooks)."""
    account = await register(client)
    async with resources.session_factory() as session:
        await verify_address(session, account)
        await session.commit()
    return account


async def create_webhook(
    client: httpx.AsyncClient, account: Account, url: str = PUBLIC_URL, **fields: Any
) -> dict[str, Any]:
    body = {"url": url, "events": ["task.*", "category.*"], **fields}
    response = await client.post(WEBHOOKS, json=body, headers=account.headers)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


async def deliveries(
    client: httpx.AsyncClient, account: Account, webhook_id: str, **params: Any
) -> list[dict[str, Any]]:
    response = await client.get(
        f"{WEBHOOKS}/{webhook_id}/deliveries", params=params, headers=account.headers
    )
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items
