"""What a newcomer meets first: `/` says where to go, the docs work offline, and a reused
verification link names the query string, where its token came from."""

from __future__ import annotations

import re

import httpx
from fastapi import FastAPI
from redis.asyncio import Redis

from api.docs import ASSETS_URL, install_docs
from common.config import Settings
from tests.integration.test_auth_email_flows import VERIFY, _verification_token
from tests.support.factories import register


async def test_the_root_points_to_the_docs_and_the_health_checks(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/")
    assert response.status_code == 200
    body = response.json()
    assert body["docs"] == "/docs"
    assert (body["health"], body["ready"], body["api"]) == ("/health", "/ready", "/api/v1")
    for link in ("docs", "health", "ready"):
        assert (await client.get(body[link])).status_code == 200


async def test_the_docs_pages_load_their_scripts_from_the_app_not_a_cdn(
    client: httpx.AsyncClient,
) -> None:
    for page in ("/docs", "/redoc"):
        html = (await client.get(page)).text
        sources = re.findall(r'(?:src|href)="([^"]+)"', html)
        assert sources, html
        assert all(source.startswith(ASSETS_URL) for source in sources), sources
        assert "cdn" not in html.lower()
        for source in sources:
            asset = await client.get(source)
            assert asset.status_code == 200, source
            assert len(asset.content) > 1000, source
    assert "/openapi.json" in (await client.get("/docs")).text


def test_docs_turned_off_stay_off() -> None:
    app = FastAPI(docs_url=None, redoc_url=None)
    install_docs(app)
    paths = {getattr(route, "path", None) for route in app.routes}
    assert {"/docs", "/redoc", ASSETS_URL} & paths == set()


async def test_a_reused_link_names_the_query_token(
    client: httpx.AsyncClient, broker: Redis, settings: Settings
) -> None:
    await register(client)
    token = await _verification_token(broker, settings)
    assert (await client.get(VERIFY, params={"token": token})).status_code == 200
    again = await client.get(VERIFY, params={"token": token})
    assert again.status_code == 400
    assert again.json()["errors"][0]["loc"] == ["query", "token"]
    by_post = await client.post(VERIFY, json={"token": token})
    assert by_post.status_code == 400
    assert by_post.json()["errors"][0]["loc"] == ["body", "token"]
