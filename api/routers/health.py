"""Liveness, readiness and metrics: what orchestrators and Prometheus poll."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy import text
from starlette.responses import Response

from api.deps import ResourcesDep
from api.metrics import render_metrics
from common.logging import get_logger

log = get_logger(__name__)
router = APIRouter(tags=["health"])

CHECK_TIMEOUT_SECONDS = 2.0


class HealthOut(BaseModel):
    status: str = Field(examples=["ok"])


class ReadinessOut(BaseModel):
    status: str = Field(examples=["ready"])
    checks: dict[str, str] = Field(examples=[{"database": "ok", "redis": "ok"}])


@router.get("/health", summary="Liveness: the process is up", response_model=HealthOut)
async def health() -> HealthOut:
    return HealthOut(status="ok")


@router.get(
    "/ready",
    summary="Readiness: PostgreSQL and Redis are reachable",
    response_model=ReadinessOut,
    responses={503: {"model": ReadinessOut, "description": "A dependency is unreachable"}},
)
async def ready(resources: ResourcesDep) -> Response:
    async def database() -> None:
        async with resources.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    async def redis() -> None:
        await resources.redis.ping()

    checks: dict[str, str] = {}
    for name, check in (("database", database), ("redis", redis)):
        try:
            await asyncio.wait_for(check(), CHECK_TIMEOUT_SECONDS)
            checks[name] = "ok"
        except Exception as exc:  # any failure means "not ready", with its name
            log.warning("readiness_check_failed", check=name, error=repr(exc))
            checks[name] = f"unavailable: {type(exc).__name__}"
    ok = all(value == "ok" for value in checks.values())
    body = ReadinessOut(status="ready" if ok else "unavailable", checks=checks)
    return JSONResponse(body.model_dump(), status_code=200 if ok else 503)


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics(resources: ResourcesDep) -> Response:
    payload, content_type = await render_metrics(resources)
    return Response(payload, media_type=content_type)
