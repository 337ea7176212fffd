"""The Taskpipe API application (`uvicorn api.main:app`)."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute, RouteContext, iter_route_contexts

from api.deps import declared_scopes
from api.docs import install_docs
from api.errors import install_error_handlers
from api.metrics import observe_pool
from api.middleware import MetricsGate, RequestContextMiddleware
from api.problems import Problem, problem_responses
from api.resources import Resources
from api.routers import (
    auth,
    categories,
    exports,
    health,
    sessions,
    sync,
    tasks,
    tokens,
    users,
    webhooks,
)
from common.accounts.scopes import ACCOUNT_MANAGEMENT
from common.config import Settings, get_settings
from common.logging import configure_logging
from common.security.store_check import warn_about_the_security_store

DESCRIPTION = """
Task management with a worker platform behind it.

* **Errors** are RFC 9457 problem details (`application/problem+json`) with a stable `type`,
  a `request_id`, and field-level `errors` for invalid input (400).
* **Other users' resources** answer 404, exactly like missing ones: existence is never revealed.
* **Every response** carries `X-Request-ID` (yours, when it is sane, or a new one).
* **Authenticated routes** are rate limited per user: every answer carries `RateLimit-Limit`,
  `RateLimit-Remaining` and `RateLimit-Reset`; past the limit, 429 with `Retry-After`.
* **Credentials**: the access token of a login (a session, which may do everything), or a
  personal access token (`tp_pat_...`) limited to its scopes. Each route names the scope it
  needs; a token without it gets 403 `insufficient-scope`, and account management (password,
  address, sessions, tokens, exports, deletion) answers a token 403 `session-required`.
* **Lists** page by offset (`page`) or by cursor: every page carries `next_cursor`, opaque and
  valid only for its list and account. **Clients that keep a copy** follow `GET /sync`.
"""


def _operation_id(route: APIRoute | RouteContext) -> str:
    """Readable operation ids for generated clients: `auth-login`, `tasks-list`, ..."""
    tag = route.tags[0] if route.tags else "default"
    return f"{tag}-{route.name}".replace("_", "-")


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    configure_logging(settings.log_level, json=settings.log_json)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if getattr(app.state, "resources", None) is None:
            app.state.resources = Resources.create(settings)
            observe_pool(
                app.state.resources.engine, settings.db_pool_size + settings.db_max_overflow
            )
            await warn_about_the_security_store(app.state.resources.security_redis, settings)
        # Everything built so far lives as long as the process: keep it out of the garbage
        # collector's full scans, which would otherwise walk it again and again under load.
        # A request allocates thousands of short-lived objects; collecting the youngest
        # generation every 20 000 allocations instead of 700 lets most die by reference count
        # first (~5 % less CPU per request in loadtests/bench.py).
        gc.collect()
        gc.freeze()
        gc.set_threshold(20_000, 20, 100)
        yield
        await app.state.resources.close()
        app.state.resources = None

    # The API's map is for its users and developers, not for strangers probing production.
    docs = settings.is_local or settings.public_docs
    app = FastAPI(
        title="Taskpipe API",
        version="1.0.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        generate_unique_id_function=_operation_id,
        separate_input_output_schemas=True,
        docs_url="/docs" if docs else None,
        redoc_url="/redoc" if docs else None,
        openapi_url="/openapi.json" if docs else None,
    )
    app.state.resources = None
    install_error_handlers(app)
    token = settings.metrics_token.get_secret_value() if settings.metrics_token else None
    app.add_middleware(MetricsGate, token=token, open_without_token=settings.is_local)
    app.add_middleware(RequestContextMiddleware)
    # Busiest first: a request is matched against every route before its own, router by
    # router, ~2 us per route (`/health` behind all the others took 100 us more). The probes'
    # three routes, then the API's hot ones. No two routers' paths overlap, so the order
    # changes nothing else.
    app.include_router(health.router)
    app.include_router(tasks.router)
    app.include_router(sync.router)
    app.include_router(categories.router)
    app.include_router(users.router)
    app.include_router(auth.router)
    app.include_router(webhooks.router)
    app.include_router(sessions.router)
    app.include_router(tokens.router)
    app.include_router(exports.router)
    install_docs(app)
    _register_problem_schema(app)
    return app


def _register_problem_schema(app: FastAPI) -> None:
    """Publish the Problem schema and replace FastAPI's default 422 with our 400 problem."""
    original = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = original()
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        problem = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
        for name, definition in problem.pop("$defs", {}).items():
            components.setdefault(name, definition)
        components["Problem"] = problem
        for name in ("HTTPValidationError", "ValidationError"):
            components.pop(name, None)
        _document_scopes(app, schema)
        _document_server_limits(schema)
        bad_request = problem_responses(400)[400]
        for operation in _operations(schema):
            responses = operation.get("responses", {})
            if _is_fastapi_default_422(responses.get("422")):
                del responses["422"]
                responses.setdefault(
                    "400",
                    {"description": bad_request["description"], "content": bad_request["content"]},
                )
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _document_scopes(app: FastAPI, schema: dict[str, Any]) -> None:
    """Each authenticated operation says which scope a personal access token needs for it
    (or that none will do) and documents the 403 that answers a token without it, and the 429
    of the per-user rate limit that every authenticated route shares."""
    by_id = {operation.get("operationId"): operation for operation in _operations(schema)}
    forbidden, limited = problem_responses(403)[403], problem_responses(429)[429]
    for route in api_routes(app):
        scopes = declared_scopes(route)
        operation = by_id.get(_operation_id(route))
        if not scopes or operation is None:
            continue
        if ACCOUNT_MANAGEMENT in scopes:
            note = "**Sessions only**: a personal access token gets 403 `session-required`."
        else:
            listed = ", ".join(f"`{scope}`" for scope in sorted(scopes))
            note = f"**Scope** a personal access token needs: {listed} (else 403)."
        description = operation.get("description", "")
        operation["description"] = f"{description}\n\n{note}".strip()
        responses = operation.setdefault("responses", {})
        responses.setdefault("403", forbidden)
        responses.setdefault("429", limited)


def _document_server_limits(schema: dict[str, Any]) -> None:
    """What the server refuses before any route runs (`api/server.py`, `api/middleware.py`):
    a head over its limits on every operation, a body over its limit on those that take one."""
    limits = problem_responses(413, 431)
    for operation in _operations(schema):
        responses = operation.setdefault("responses", {})
        responses.setdefault("431", limits[431])
        if "requestBody" in operation:
            responses.setdefault("413", limits[413])


def api_routes(app: FastAPI) -> list[RouteContext]:
    """Every API route as the app serves it (prefix included): FastAPI keeps an included
    router's routes behind route contexts."""
    return [c for c in iter_route_contexts(app.routes) if isinstance(c.original_route, APIRoute)]


def _is_fastapi_default_422(response: dict[str, Any] | None) -> bool:
    """FastAPI's own 422 (a route may document a 422 of its own, e.g. idempotency-key-reused)."""
    if response is None:
        return False
    schema = response.get("content", {}).get("application/json", {}).get("schema", {})
    return bool(schema.get("$ref", "").endswith("/HTTPValidationError"))


def _operations(schema: dict[str, Any]) -> list[dict[str, Any]]:
    methods = {"get", "post", "put", "patch", "delete", "head", "options"}
    return [
        operation
        for path_item in schema.get("paths", {}).values()
        for method, operation in path_item.items()
        if method in methods
    ]


app = create_app()
