"""What production shows to strangers: no API map unless chosen, no metrics without the token,
and headers that keep browsers from second-guessing what we send."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import httpx
import pytest
from pydantic import SecretStr

from api.main import create_app
from api.resources import Resources
from common.config import Environment

DOCS = ("/docs", "/redoc", "/openapi.json")
TOKEN = "scrape-me-9f8e7d6c5b4a3210"

AppClient = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]


@pytest.fixture
def app_client(test_resources: Resources) -> AppClient:
    """`async with app_client(env=..., **settings) as c:` an app built with those settings."""

    @asynccontextmanager
    async def open_client(**overrides: object) -> AsyncIterator[httpx.AsyncClient]:
        settings = test_resources.settings.model_copy(update=overrides)
        app = create_app(settings)
        app.state.resources = test_resources
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            yield c

    return open_client


async def test_production_hides_the_docs_unless_they_are_chosen(app_client: AppClient) -> None:
    async with app_client(env=Environment.PRODUCTION) as hidden:
        for path in DOCS:
            response = await hidden.get(path)
            assert response.status_code == 404, path
            assert response.headers["content-type"] == "application/problem+json"
    async with app_client(env=Environment.PRODUCTION, public_docs=True) as public:
        for path in DOCS:
            assert (await public.get(path)).status_code == 200, path


@pytest.mark.parametrize("env", [Environment.DEVELOPMENT, Environment.TEST])
async def test_development_and_test_serve_the_docs(app_client: AppClient, env: Environment) -> None:
    async with app_client(env=env) as local:
        for path in DOCS:
            assert (await local.get(path)).status_code == 200, path


async def test_production_metrics_need_the_token(app_client: AppClient) -> None:
    async with app_client(env=Environment.PRODUCTION) as untokened:
        assert (await untokened.get("/metrics")).status_code == 404
        assert (await untokened.get("/metrics", headers=_bearer(""))).status_code == 404
    async with app_client(env=Environment.PRODUCTION, metrics_token=SecretStr(TOKEN)) as guarded:
        for headers in ({}, _bearer("wrong"), _bearer(TOKEN + "x"), {"Authorization": TOKEN}):
            refused = await guarded.get("/metrics", headers=headers)
            assert refused.status_code == 404, headers
            assert "taskpipe_" not in refused.text
        for scheme in ("Bearer", "bearer"):
            allowed = await guarded.get("/metrics", headers={"Authorization": f"{scheme} {TOKEN}"})
            assert allowed.status_code == 200
            assert "taskpipe_http_requests_total" in allowed.text


async def test_development_metrics_are_open_until_a_token_is_set(app_client: AppClient) -> None:
    async with app_client(env=Environment.DEVELOPMENT) as local:
        assert (await local.get("/metrics")).status_code == 200
    async with app_client(env=Environment.DEVELOPMENT, metrics_token=SecretStr(TOKEN)) as guarded:
        assert (await guarded.get("/metrics")).status_code == 404
        assert (await guarded.get("/metrics", headers=_bearer(TOKEN))).status_code == 200


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/health", None),
        ("GET", "/no-such-path", None),
        ("GET", "/api/v1/users/me", None),  # 401
        ("POST", "/api/v1/auth/login", {"email": "not-an-address"}),  # 400
        ("POST", "/api/v1/auth/login", "x" * 20_000),  # 413 from the middleware
    ],
)
async def test_every_answer_carries_nosniff(
    client: httpx.AsyncClient, method: str, path: str, body: object
) -> None:
    content = body if isinstance(body, str) else None
    json_body = None if isinstance(body, str) else body
    response = await client.request(method, path, json=json_body, content=content)
    assert response.headers["X-Content-Type-Options"] == "nosniff"


async def test_a_bug_answers_like_every_other_answer(test_resources: Resources) -> None:
    """A route that raises: the 500 still carries nosniff, the request id and the problem
    shape (Starlette's outermost error middleware used to send it past the headers)."""

    async def raises() -> None:
        raise RuntimeError("secret internals")

    app = create_app(test_resources.settings)
    app.add_api_route("/raises", raises)
    app.state.resources = test_resources
    # Not raised into the test: what matters is what the client was sent.
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        response = await c.get("/raises", headers={"X-Request-ID": "trace-me-42"})
    assert response.status_code == 500
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Request-ID"] == "trace-me-42"
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["type"] == "urn:taskpipe:problem:internal-error"
    assert (problem["status"], problem["request_id"]) == (500, "trace-me-42")
    assert "secret internals" not in response.text
