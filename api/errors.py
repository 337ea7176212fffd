"""Exception handlers: every error leaves as problem+json, never with a stack trace."""

from __future__ import annotations

from typing import Any

import asyncpg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import iter_route_contexts
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as SQLAlchemyTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.routing import Match

from api.problems import internal_error, problem_response
from common.db.errors import database_unavailable
from common.errors import AppError
from common.logging import get_logger, request_id_var

log = get_logger(__name__)

_HTTP_CODES = {
    400: "bad-request",
    401: "unauthorized",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
    406: "not-acceptable",
    413: "payload-too-large",
    415: "unsupported-media-type",
}


MAX_FIELD_ERRORS = 20
"""An answer lists at most this many field errors: a body of 100k unknown keys must not earn a
10 MB answer (bodies are size-limited before parsing, too: api/middleware.py)."""


def _field_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    errors = []
    for error in exc.errors()[:MAX_FIELD_ERRORS]:
        loc = [part for part in error.get("loc", ()) if isinstance(part, str | int)]
        field = ".".join(str(part) for part in loc[1:]) or None
        msg = str(error.get("msg", "Invalid value"))
        if error.get("type") == "extra_forbidden":
            msg = "Unknown field"
        errors.append({"loc": loc, "field": field, "msg": msg, "type": error.get("type")})
    return errors


async def _app_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, AppError)
    return problem_response(
        status=exc.status,
        code=exc.code,
        title=exc.title,
        detail=exc.detail,
        instance=request.url.path,
        request_id=request_id_var.get(),
        headers=exc.headers,
        extra=exc.extra,
    )


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = _field_errors(exc)
    fields = sorted({error["field"] for error in errors if error["field"]})
    detail = "Invalid input: " + ", ".join(fields) if fields else "Invalid input"
    if len(exc.errors()) > len(errors):
        detail += f" (first {len(errors)} of {len(exc.errors())} errors)"
    return problem_response(
        status=400,
        code="validation-error",
        title="Invalid input",
        detail=detail,
        instance=request.url.path,
        request_id=request_id_var.get(),
        extra={"errors": errors},
    )


_METHODS = ("DELETE", "GET", "PATCH", "POST", "PUT")


def _allowed_methods(request: Request) -> str:
    """Every method some route of this path accepts: Starlette's 405 names only those of the
    first route matching the path (`PUT /users/me` said `GET` and forgot `PATCH`). A fixed
    path is a resource of its own: `/tasks/trash` allows GET only, though `/tasks/{task_id}`
    matches it too (and answers 400, "trash" being no task id)."""
    matching = [
        route
        for route in iter_route_contexts(request.app.router.routes)
        if route.matches(request.scope)[0] is not Match.NONE
    ]
    fixed = [route for route in matching if not route.param_convertors]
    return ", ".join(
        method
        for method in _METHODS
        if any(route.methods and method in route.methods for route in fixed or matching)
    )


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        headers["Allow"] = _allowed_methods(request)
    return problem_response(
        status=exc.status_code,
        code=_HTTP_CODES.get(exc.status_code, "http-error"),
        title=str(exc.detail) if exc.status_code != 404 else "Not found",
        detail=str(exc.detail),
        instance=request.url.path,
        request_id=request_id_var.get(),
        headers=headers,
    )


def _statement_cancelled(exc: Exception) -> bool:
    """PostgreSQL cancelled the statement: `TASKPIPE_DB_STATEMENT_TIMEOUT_MS` ran out."""
    if isinstance(exc, DBAPIError) and exc.orig is not None:
        return isinstance(exc.orig.__cause__, asyncpg.exceptions.QueryCanceledError)
    return False


async def _database_error(request: Request, exc: Exception) -> Response:
    """PostgreSQL out of reach (restarting, failing over, refusing connections, the pool
    exhausted) is the server's trouble, not the client's: 503 with Retry-After. A dropped
    connection has already made the pool replace its connections for the retry. Any other
    database error is a bug: 500."""
    if _statement_cancelled(exc):
        log.warning("statement_timeout", path=request.url.path)
        detail, retry_after = "The database took too long to answer; retry shortly", "2"
    elif database_unavailable(exc):
        original = exc.orig if isinstance(exc, DBAPIError) else exc
        log.warning("dependency_unavailable", path=request.url.path, error=repr(original))
        detail, retry_after = "The database is out of reach for a moment; retry the request", "1"
    else:
        return await _unexpected_error(request, exc)
    return problem_response(
        status=503,
        code="service-unavailable",
        title="Service unavailable",
        detail=detail,
        instance=request.url.path,
        request_id=request_id_var.get(),
        headers={"Retry-After": retry_after},
    )


async def _unexpected_error(request: Request, exc: Exception) -> Response:
    log.exception("unhandled_error", path=request.url.path)
    return internal_error(request.url.path, request_id_var.get())


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(AppError, _app_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(DBAPIError, _database_error)
    app.add_exception_handler(SQLAlchemyTimeoutError, _database_error)
    app.add_exception_handler(OSError, _database_error)
    app.add_exception_handler(Exception, _unexpected_error)
