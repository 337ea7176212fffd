"""Every route is public on purpose or declares what a caller needs (a scope, or a session for
account management). A route added without one, here or on another branch, fails here."""

from __future__ import annotations

from fastapi import FastAPI

from api.deps import AccountOwner, CurrentPrincipal, TasksReader, declared_scopes
from api.main import api_routes
from common.accounts.scopes import ACCOUNT_MANAGEMENT, Scope

PUBLIC = {
    ("GET", "/health"),
    ("GET", "/ready"),
    ("GET", "/metrics"),
    ("POST", "/api/v1/auth/register"),
    ("POST", "/api/v1/auth/login"),
    ("POST", "/api/v1/auth/refresh"),
    ("POST", "/api/v1/auth/logout"),  # a refresh token, or a session's access token (checked)
    ("GET", "/api/v1/auth/verify-email"),
    ("POST", "/api/v1/auth/verify-email"),
    ("POST", "/api/v1/auth/resend-verification"),
    ("POST", "/api/v1/auth/forgot-password"),
    ("POST", "/api/v1/auth/reset-password"),
    ("GET", "/api/v1/auth/confirm-email-change"),
    ("POST", "/api/v1/auth/confirm-email-change"),
    ("GET", "/api/v1/exports/{export_id}/archive"),  # the mailed link is the credential
    ("POST", "/api/v1/auth/restore-account"),
}
ACCOUNT_ROUTES = {
    ("PATCH", "/api/v1/users/me"),
    ("DELETE", "/api/v1/users/me"),
    ("POST", "/api/v1/users/me/password"),
    ("POST", "/api/v1/users/me/email"),
    ("POST", "/api/v1/users/me/exports"),
    ("GET", "/api/v1/users/me/exports/{export_id}"),
    ("GET", "/api/v1/users/me/sessions"),
    ("DELETE", "/api/v1/users/me/sessions"),
    ("DELETE", "/api/v1/users/me/sessions/{session_id}"),
    ("POST", "/api/v1/users/me/tokens"),
    ("GET", "/api/v1/users/me/tokens"),
    ("DELETE", "/api/v1/users/me/tokens/{token_id}"),
}
GRANTABLE = {scope.value for scope in Scope}


def _routes(app: FastAPI) -> dict[tuple[str, str], set[str] | None]:
    return {
        (method, route.path): declared_scopes(route)
        for route in api_routes(app)
        for method in route.methods
    }


def test_every_route_is_public_or_declares_the_scope_it_needs(app: FastAPI) -> None:
    routes = _routes(app)
    public = {route for route, scopes in routes.items() if scopes is None}
    assert public == PUBLIC
    undeclared = [route for route, scopes in routes.items() if scopes == set()]
    assert undeclared == [], "authenticated routes declaring no scope (use a scoped alias)"
    for route, scopes in routes.items():
        assert scopes is None or scopes <= GRANTABLE | {ACCOUNT_MANAGEMENT}, route


def test_account_management_is_for_sessions_exactly_on_these_routes(app: FastAPI) -> None:
    routes = _routes(app)
    managed = {route for route, scopes in routes.items() if scopes and ACCOUNT_MANAGEMENT in scopes}
    assert managed == ACCOUNT_ROUTES


def test_the_walk_notices_a_route_that_declares_no_scope() -> None:
    probe = FastAPI()

    @probe.get("/unscoped")
    async def unscoped(principal: CurrentPrincipal) -> None: ...

    @probe.get("/scoped")
    async def scoped(principal: TasksReader) -> None: ...

    @probe.get("/managed")
    async def managed(principal: AccountOwner) -> None: ...

    @probe.get("/public")
    async def public() -> None: ...

    assert _routes(probe) == {
        ("GET", "/unscoped"): set(),
        ("GET", "/scoped"): {"tasks:read"},
        ("GET", "/managed"): {ACCOUNT_MANAGEMENT},
        ("GET", "/public"): None,
    }
