"""FastAPI dependencies as `Annotated` aliases: resources, the unit of work, the current user."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Annotated

import structlog
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.boundary import open_unit_of_work
from api.middleware import RATE_LIMIT_STATE
from api.resources import Resources
from common.auth.service import AuthService
from common.auth.tokens import TokenClaims
from common.db.uow import UnitOfWork
from common.errors import RateLimited, ServiceUnavailable, Unauthorized
from common.security.network import rate_limit_key


# Dependencies are `async def` on purpose: FastAPI runs plain `def` ones in a thread pool,
# a thread hop per dependency per request.
async def get_resources(request: Request) -> Resources:
    resources: Resources = request.app.state.resources
    return resources


ResourcesDep = Annotated[Resources, Depends(get_resources)]


async def get_uow(request: Request, resources: ResourcesDep) -> UnitOfWork:
    """The request's one unit of work (routes of `api.boundary.UnitOfWorkRoute` end it)."""
    return open_unit_of_work(request, resources)


UnitOfWorkDep = Annotated[UnitOfWork, Depends(get_uow)]


def auth_service(uow: UnitOfWork, resources: Resources) -> AuthService:
    return AuthService(
        uow,
        resources.settings,
        resources.hasher,
        resources.limiter,
        resources.lockout,
        resources.revocations,
    )


async def get_auth_service(uow: UnitOfWorkDep, resources: ResourcesDep) -> AuthService:
    return auth_service(uow, resources)


AuthServiceDep = Annotated[AuthService, Depends(get_auth_service)]

_bearer = HTTPBearer(auto_error=False, description="Access token from /api/v1/auth/login")


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling, from a verified access token (no database round trip)."""

    user_id: uuid.UUID
    claims: TokenClaims


BearerCredentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


async def get_principal(
    request: Request, resources: ResourcesDep, credentials: BearerCredentials
) -> Principal:
    """The caller of an authenticated route: a valid access token of a session that has not
    ended, whose user is within the per-user rate limit (one Redis call for both)."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthorized("Missing bearer token")
    claims = resources.access_tokens.verify(credentials.credentials)
    admission = await resources.revocations.admit(claims)
    if admission.revoked:
        raise Unauthorized("This session has ended; log in again")
    structlog.contextvars.bind_contextvars(user_id=str(claims.user_id))
    limit = admission.limit
    if not limit.degraded:
        setattr(request.state, RATE_LIMIT_STATE, limit)
    if not limit.allowed:
        if limit.degraded:
            raise ServiceUnavailable(
                "Rate limiting is unavailable; try again shortly", headers={"Retry-After": "5"}
            )
        raise RateLimited("Too many requests for this account; slow down")
    return Principal(user_id=claims.user_id, claims=claims)


CurrentPrincipal = Annotated[Principal, Depends(get_principal)]


async def client_ip(request: Request) -> str:
    """The client as per-IP limits count it: an IPv4 address, or an IPv6 address's /64."""
    return rate_limit_key(request.client.host) if request.client else "unknown"


ClientIP = Annotated[str, Depends(client_ip)]
