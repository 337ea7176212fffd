"""FastAPI dependencies as `Annotated` aliases: resources, the unit of work, the caller and
what the caller may do.

Every authenticated route declares the scope it needs on the principal dependency
(`Security(get_principal, scopes=[...])`, through the aliases below): a session holds every
scope, a personal access token the ones it was created with and never `account:manage`.
`tests/unit/test_route_scopes.py` walks every route and refuses one that declares none.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from dataclasses import dataclass
from typing import Annotated, Any

import structlog
from fastapi import Depends, Request, Security
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, RouteContext
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer, SecurityScopes

from api.boundary import open_unit_of_work, resources_of
from api.middleware import RATE_LIMIT_STATE
from api.resources import Resources
from common.accounts.credentials import CredentialService
from common.accounts.deletion import DeletionService
from common.accounts.personal_tokens import is_personal_token
from common.accounts.scopes import ACCOUNT_MANAGEMENT, Scope
from common.auth.service import AuthService
from common.auth.sessions import credential_ended
from common.db.uow import UnitOfWork
from common.errors import Forbidden, RateLimited, ServiceUnavailable, Unauthorized
from common.security.network import Client, rate_limit_key


# Dependencies are `async def` on purpose: FastAPI runs plain `def` ones in a thread pool,
# a thread hop per dependency per request. The shared ones (the unit of work, the principal)
# take the request alone and find the resources on it: FastAPI walks every sub-dependency of
# every dependency on each request, cached or not, about 20 us a node.
async def get_resources(request: Request) -> Resources:
    return resources_of(request)


ResourcesDep = Annotated[Resources, Depends(get_resources)]


async def get_uow(request: Request) -> UnitOfWork:
    """The request's one unit of work (routes of `api.boundary.UnitOfWorkRoute` end it)."""
    return open_unit_of_work(request)


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


async def get_credential_service(uow: UnitOfWorkDep, resources: ResourcesDep) -> CredentialService:
    return CredentialService(
        uow,
        resources.settings,
        hasher=resources.hasher,
        lockout=resources.lockout,
        limiter=resources.limiter,
        revocations=resources.revocations,
    )


CredentialServiceDep = Annotated[CredentialService, Depends(get_credential_service)]


async def get_deletion_service(uow: UnitOfWorkDep, resources: ResourcesDep) -> DeletionService:
    return DeletionService(
        uow,
        resources.settings,
        hasher=resources.hasher,
        lockout=resources.lockout,
        revocations=resources.revocations,
    )


DeletionServiceDep = Annotated[DeletionService, Depends(get_deletion_service)]

_bearer = HTTPBearer(
    auto_error=False,
    description="An access token from /api/v1/auth/login, or a personal access token "
    "(`tp_pat_...`) from /api/v1/users/me/tokens",
)


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: a session (a login's access token, checked without the database) or
    a personal access token."""

    user_id: uuid.UUID
    session_id: uuid.UUID | None
    """The login session (refresh-token family) of an access token; None for a token."""
    token_id: uuid.UUID | None = None
    """The personal access token; None for a session."""
    scopes: frozenset[str] | None = None
    """A personal access token's scopes; None for a session, which holds every scope."""

    def missing(self, required: Collection[str]) -> list[str]:
        if self.scopes is None:
            return []
        return [scope for scope in required if scope not in self.scopes]


BearerCredentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
_PRINCIPAL_KEY = "taskpipe.principal"
SESSION_ENDED = "This session has ended; log in again"
TOKEN_REVOKED = "This token was revoked"


async def authenticate(
    request: Request, resources: Resources, credentials: HTTPAuthorizationCredentials | None
) -> Principal:
    """The caller, once per request (routes may declare the principal more than once): a
    valid credential that has not been ended, whose user is within the per-user rate limit
    (one Redis call for both)."""
    known: Principal | None = request.scope.get(_PRINCIPAL_KEY)
    if known is not None:
        return known
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthorized("Missing bearer token")
    presented = credentials.credentials
    if is_personal_token(presented):
        identity = await resources.personal_tokens.verify(presented, resources.reads)
        principal = Principal(identity.user_id, None, identity.token_id, identity.scopes)
        credential_id = identity.token_id
    else:
        claims = resources.access_tokens.verify(presented)
        if claims.family_id is None:  # not one of ours: every token we issue has a session
            raise Unauthorized(SESSION_ENDED)
        principal = Principal(claims.user_id, claims.family_id)
        credential_id = claims.family_id
    admission = await resources.revocations.admit(principal.user_id, credential_id)
    if admission.revoked:
        raise Unauthorized(TOKEN_REVOKED if principal.token_id else SESSION_ENDED)
    limit = admission.limit
    structlog.contextvars.bind_contextvars(user_id=str(principal.user_id))
    if not limit.degraded:
        setattr(request.state, RATE_LIMIT_STATE, limit)
    if not limit.allowed:
        if limit.degraded:
            raise ServiceUnavailable(
                "Rate limiting is unavailable; try again shortly", headers={"Retry-After": "5"}
            )
        raise RateLimited("Too many requests for this account; slow down")
    if limit.degraded:
        await _ask_postgresql(resources, principal, presented)
    request.scope[_PRINCIPAL_KEY] = principal
    return principal


async def _ask_postgresql(resources: Resources, principal: Principal, presented: str) -> None:
    """The security Redis cannot say whether the credential was ended: PostgreSQL can (one
    indexed read per request while Redis is away)."""
    if principal.token_id is not None:
        await resources.personal_tokens.verify(presented, resources.reads, fresh=True)
    elif principal.session_id is not None and await credential_ended(
        resources.reads, principal.user_id, principal.session_id
    ):
        raise Unauthorized(SESSION_ENDED)


async def get_principal(
    request: Request, security_scopes: SecurityScopes, credentials: BearerCredentials
) -> Principal:
    """The caller of an authenticated route, holding the scopes the route declares."""
    principal = await authenticate(request, resources_of(request), credentials)
    if principal.scopes is not None:
        if ACCOUNT_MANAGEMENT in security_scopes.scopes:
            raise SessionRequired()
        missing = principal.missing(security_scopes.scopes)
        if missing:
            raise MissingScope(missing)
    return principal


class SessionRequired(Forbidden):
    code = "session-required"
    title = "A signed-in session is required"

    def __init__(self) -> None:
        super().__init__(
            "Personal access tokens cannot manage the account; use the access token of a "
            "login (/api/v1/auth/login)"
        )


class MissingScope(Forbidden):
    """RFC 6750 section 3.1: `insufficient_scope`, naming what is missing."""

    code = "insufficient-scope"
    title = "The token lacks a scope this route needs"

    def __init__(self, missing: list[str]) -> None:
        needed = " ".join(missing)
        super().__init__(
            f"This token lacks the scope {needed}",
            headers={"WWW-Authenticate": f'Bearer error="insufficient_scope", scope="{needed}"'},
            extra={"missing_scopes": missing},
        )


def _principal(*scopes: str) -> Any:
    return Security(get_principal, scopes=list(scopes))


TasksReader = Annotated[Principal, _principal(Scope.TASKS_READ)]
TasksWriter = Annotated[Principal, _principal(Scope.TASKS_WRITE)]
CategoriesReader = Annotated[Principal, _principal(Scope.CATEGORIES_READ)]
CategoriesWriter = Annotated[Principal, _principal(Scope.CATEGORIES_WRITE)]
TasksAndCategoriesReader = Annotated[Principal, _principal(Scope.TASKS_READ, Scope.CATEGORIES_READ)]
"""Both lists at once (the change feed)."""
AccountReader = Annotated[Principal, _principal(Scope.ACCOUNT_READ)]
WebhooksReader = Annotated[Principal, _principal(Scope.WEBHOOKS_READ)]
WebhooksWriter = Annotated[Principal, _principal(Scope.WEBHOOKS_WRITE)]
AccountOwner = Annotated[Principal, _principal(ACCOUNT_MANAGEMENT)]
"""Account management (password, address, sessions, tokens, exports, deletion): sessions only."""
CurrentPrincipal = Annotated[Principal, Depends(get_principal)]
"""Any caller, declaring no scope: the route-scope test refuses it on every route (it stays so
that routes written before scopes existed still import, and are named there)."""


def declared_scopes(route: APIRoute | RouteContext) -> set[str] | None:
    """The scopes a route declares on the principal; None for a route without one (public)."""

    def walk(dependant: Dependant) -> set[str] | None:
        found: set[str] | None = None
        for dependency in dependant.dependencies:
            if dependency.call is get_principal:
                own = dependency.own_oauth_scopes or []
                found = (found or set()) | set(own) | set(dependency.parent_oauth_scopes or [])
            deeper = walk(dependency)
            if deeper is not None:
                found = (found or set()) | deeper
        return found

    return walk(route.dependant)


async def client(request: Request) -> Client:
    """The caller's address as per-IP limits count it, and its user agent."""
    ip = rate_limit_key(request.client.host) if request.client else "unknown"
    return Client.of(ip, request.headers.get("user-agent"))


ClientDep = Annotated[Client, Depends(client)]
