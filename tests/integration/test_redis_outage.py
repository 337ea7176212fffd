"""With Redis down the API stays up: limits fail open (or closed, by setting) and it is logged."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from api.resources import Resources
from common.auth.lockout import LoginLockout
from common.auth.revocation import TokenRevocations
from common.jobs import JobPublisher, create_producer
from common.ratelimit import RateLimiter
from common.redis import create_redis
from tests.support.factories import PASSWORD, register, unique_email

DEAD_REDIS = "redis://127.0.0.1:1/0"


def _without_redis(resources: Resources, *, fail_open: bool) -> Resources:
    settings = resources.settings.model_copy(
        update={
            "redis_url": DEAD_REDIS,
            "broker_url": DEAD_REDIS,
            "rate_limit_fail_open": fail_open,
        }
    )
    redis = create_redis(settings)
    limiter = RateLimiter(redis, fail_open=fail_open)
    return dataclasses.replace(
        resources,
        settings=settings,
        redis=redis,
        limiter=limiter,
        lockout=LoginLockout(redis, limiter, settings),
        revocations=TokenRevocations(redis, settings.access_token_ttl),
        publisher=JobPublisher(create_producer(settings)),
    )


@pytest.fixture
async def dead_redis_client(
    app: FastAPI, test_resources: Resources, request: pytest.FixtureRequest
) -> AsyncIterator[httpx.AsyncClient]:
    app.state.resources = _without_redis(test_resources, fail_open=request.param)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        yield c
    await app.state.resources.redis.aclose()


@pytest.mark.parametrize("dead_redis_client", [True], indirect=True)
async def test_fail_open_keeps_auth_working(dead_redis_client: httpx.AsyncClient) -> None:
    account = await register(dead_redis_client)
    login = await dead_redis_client.post(
        "/api/v1/auth/login", json={"email": account.email, "password": PASSWORD}
    )
    assert login.status_code == 200
    me = await dead_redis_client.get(
        "/api/v1/users/me", headers={"Authorization": f"Bearer {login.json()['access_token']}"}
    )
    assert me.status_code == 200
    metrics = (await dead_redis_client.get("/metrics")).text
    assert 'taskpipe_redis_failures_total{operation="rate_limit"}' in metrics


@pytest.mark.parametrize("dead_redis_client", [False], indirect=True)
async def test_fail_closed_refuses_rate_limited_routes(
    dead_redis_client: httpx.AsyncClient,
) -> None:
    response = await dead_redis_client.post(
        "/api/v1/auth/register",
        json={"email": unique_email(), "password": PASSWORD, "full_name": "Closed"},
    )
    assert response.status_code == 503
    assert response.json()["type"] == "urn:taskpipe:problem:service-unavailable"
    assert response.headers["Retry-After"] == "5"
