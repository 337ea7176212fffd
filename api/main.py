"""The Taskpipe API application (`uvicorn api.main:app`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.routing import APIRoute

from api.errors import install_error_handlers
from api.middleware import RequestContextMiddleware
from api.problems import Problem
from api.resources import Resources
from api.routers import auth, health, users
from common.config import Settings, get_settings
from common.logging import configure_logging

DESCRIPTION = """
Task management with a worker platform behind it.

* **Errors** are RFC 9457 problem details (`application/problem+json`) with a stable `type`,
  a `request_id`, and field-level `errors` for invalid input (400).
* **Other users' resources** answer 404, exactly like missing ones: existence is never revealed.
* **Every response** carries `X-Request-ID` (yours, when it is sane, or a new one).
"""


def _operation_id(route: APIRoute) -> str:
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
        yield
        await app.state.resources.close()
        app.state.resources = None

    app = FastAPI(
        title="Taskpipe API",
        version="1.0.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        generate_unique_id_function=_operation_id,
        separate_input_output_schemas=True,
    )
    app.state.resources = None
    install_error_handlers(app)
    app.add_middleware(RequestContextMiddleware)
    app.include_router(health.router)
    app.include_router(auth.router)
    app.include_router(users.router)
    _register_problem_schema(app)
    return app


def _register_problem_schema(app: FastAPI) -> None:
    """Make `#/components/schemas/Problem` exist for the problem+json responses."""
    original = app.openapi

    def openapi() -> dict[str, object]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = original()
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components.setdefault(
            "Problem", Problem.model_json_schema(ref_template="#/components/schemas/{model}")
        )
        for name, definition in (
            Problem.model_json_schema(ref_template="#/components/schemas/{model}")
            .get("$defs", {})
            .items()
        ):
            components.setdefault(name, definition)
        components["Problem"].pop("$defs", None)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


app = create_app()
