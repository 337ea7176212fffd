from __future__ import annotations

import dataclasses

import httpx
import pytest
from fastapi import FastAPI

from api.resources import Resources
from common.redis import create_redis


async def test_health_is_ok_without_dependencies(client: httpx.AsyncClient) -> None:
    response = await client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_ready_when_database_and_redis_answer(client: httpx.AsyncClient) -> None:
    response = await client.get("/ready")
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "checks": {"database": "ok", "redis": "ok"}}


async def test_ready_stays_200_when_only_redis_is_down_and_says_so(
    app: FastAPI, test_resources: Resources
) -> None:
    """The API serves every request from PostgreSQL without Redis: readiness must not pull
    every replica out of service at once (the old check answered 503 here)."""
    dead = test_resources.settings.model_copy(update={"redis_url": "redis://127.0.0.1:1/0"})
    app.state.resources = dataclasses.replace(test_resources, redis=create_redis(dead))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        response = await c.get("/ready")
        down = (await c.get("/metrics")).text
    await app.state.resources.redis.aclose()
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ready"
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["redis"].startswith("degraded: ")
    assert "taskpipe_redis_up 0.0" in down


async def test_the_redis_gauge_is_1_when_redis_answers(client: httpx.AsyncClient) -> None:
    assert (await client.get("/ready")).json()["checks"]["redis"] == "ok"
    assert "taskpipe_redis_up 1.0" in (await client.get("/metrics")).text


async def test_ready_is_503_when_database_is_down(app: FastAPI, test_resources: Resources) -> None:
    from common.db.session import create_engine

    dead = test_resources.settings.model_copy(
        update={"database_url": "postgresql+asyncpg://postgres@127.0.0.1:1/none"}
    )
    engine = create_engine(dead)
    app.state.resources = dataclasses.replace(test_resources, engine=engine)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        response = await c.get("/ready")
    await engine.dispose()
    assert response.status_code == 503
    assert response.json()["checks"]["database"].startswith("unavailable")


async def test_every_response_carries_a_request_id(client: httpx.AsyncClient) -> None:
    response = await client.get("/health", headers={"X-Request-ID": "abc-123"})
    assert response.headers["X-Request-ID"] == "abc-123"
    generated = await client.get("/health", headers={"X-Request-ID": "bad id\twith spaces"})
    assert generated.headers["X-Request-ID"] != "bad id\twith spaces"
    assert len(generated.headers["X-Request-ID"]) == 32


async def test_metrics_count_requests_by_route_template(client: httpx.AsyncClient) -> None:
    await client.get("/health")
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert (
        'taskpipe_http_requests_total{method="GET",route="/health",status="200"}' in response.text
    )
    assert "taskpipe_http_request_duration_seconds_bucket" in response.text


@pytest.mark.parametrize("path", ["/nope", "/api/v1/nothing-here"])
async def test_unknown_route_is_a_problem_404(client: httpx.AsyncClient, path: str) -> None:
    response = await client.get(path)
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == "urn:taskpipe:problem:not-found"


async def test_metrics_include_worker_totals_kept_in_redis(
    client: httpx.AsyncClient, test_resources: Resources
) -> None:
    from common import jobstats

    await jobstats.record(test_resources.redis, "purged_rows", {"tasks": 7, "sent_emails": 0})
    await jobstats.record(test_resources.redis, "purged_rows", {"tasks": 3})
    text = (await client.get("/metrics")).text
    assert 'taskpipe_purged_rows_total{table="tasks"} 10' in text
    assert "sent_emails" not in text
    assert "# TYPE taskpipe_mails_total counter" in text


async def test_a_chunked_body_over_the_limit_is_413(client: httpx.AsyncClient) -> None:
    async def chunks():  # type: ignore[no-untyped-def]
        for _ in range(6):
            yield b"x" * 1_000_000

    response = await client.post(
        "/api/v1/auth/login", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 413
    assert response.json()["type"] == "urn:taskpipe:problem:payload-too-large"


async def test_made_up_methods_do_not_mint_metric_series(client: httpx.AsyncClient) -> None:
    for method in ["X0ZZY", "X1ZZY"]:
        await client.request(method, "/health")
    text = (await client.get("/metrics")).text
    assert "X0ZZY" not in text
    assert 'method="OTHER"' in text
