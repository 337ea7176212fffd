"""Liveness, readiness and metrics: what orchestrators and Prometheus poll."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from redis.asyncio import Redis
from sqlalchemy import text
from starlette.responses import Response

from api.deps import ResourcesDep
from api.metrics import render_metrics
from common.logging import get_logger
from common.metrics import REDIS_UP

log = get_logger(__name__)
router = APIRouter(tags=["health"])

CHECK_TIMEOUT_SECONDS = 2.0


class HealthOut(BaseModel):
    status: str = Field(examples=["ok"])


class ReadinessOut(BaseModel):
    status: str = Field(examples=["ready"])
    checks: dict[str, str] = Field(
        description="`database` decides readiness; `redis` is informative (`ok` or "
        "`degraded: <error>`): without Redis the API serves from PostgreSQL",
        examples=[{"database": "ok", "redis": "ok"}],
    )


@router.get("/health", summary="Liveness: the process is up", response_model=HealthOut)
async def health() -> HealthOut:
    return HealthOut(status="ok")


async def redis_state(redis: Redis) -> str:
    """`ok` or `degraded: <error>`; also sets the `taskpipe_redis_up` gauge."""
    try:
        await asyncio.wait_for(redis.ping(), CHECK_TIMEOUT_SECONDS)
    except Exception as exc:  # any failure is "degraded", with its name
        REDIS_UP.set(0)
        return f"degraded: {type(exc).__name__}"
    REDIS_UP.set(1)
    return "ok"


@router.get(
    "/ready",
    summary="Readiness: PostgreSQL is reachable (Redis is reported, not required)",
    description="200 while PostgreSQL answers. Redis down does not make the API unready: "
    "caches and limits degrade, every request still works, so pulling every replica out of "
    "service at once would only turn a degradation into an outage.",
    response_model=ReadinessOut,
    responses={503: {"model": ReadinessOut, "description": "PostgreSQL is unreachable"}},
)
async def ready(resources: ResourcesDep) -> Response:
    async def database() -> None:
        async with resources.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    try:
        await asyncio.wait_for(database(), CHECK_TIMEOUT_SECONDS)
        database_state = "ok"
    except Exception as exc:  # any failure means "not ready", with its name
        log.warning("readiness_check_failed", check="database", error=repr(exc))
        database_state = f"unavailable: {type(exc).__name__}"
    checks = {"database": database_state, "redis": await redis_state(resources.redis)}
    ok = database_state == "ok"
    body = ReadinessOut(status="ready" if ok else "unavailable", checks=checks)
    return JSONResponse(body.model_dump(), status_code=200 if ok else 503)


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics(resources: ResourcesDep) -> Response:
    await redis_state(resources.redis)
    payload, content_type = await render_metrics(resources)
    return Response(payload, media_type=content_type)
