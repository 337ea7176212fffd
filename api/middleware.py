"""Pure ASGI middleware (no BaseHTTPMiddleware overhead): request id, access log, metrics,
body limits and the headers every answer carries."""

from __future__ import annotations

import hmac
import re
import time
import uuid

import structlog
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.metrics import HTTP_LATENCY, HTTP_REQUESTS
from api.problems import internal_error, problem_response
from common.logging import get_logger, request_id_var
from common.ratelimit import RateLimitResult

log = get_logger("taskpipe.access")

_SANE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
MAX_BODY_BYTES = 64 * 1024
"""The largest valid body (a task: 200 + 2000 characters, even each escaped as `\\uXXXX`
pairs) is under 30 KiB; anything larger is refused before it is read or parsed."""
BODY_LIMITS_BY_PREFIX = (("/api/v1/auth/", 16 * 1024), ("/api/v1/tasks/batch", 256 * 1024))
"""Smaller still where bodies are a few short fields and no credentials are needed to send
one: parsing and validating is then bounded work (validation of a 1 MiB body of unknown
keys took 0.6 s of the event loop). Larger for batches of up to 100 tasks: 100 tasks with
full-length ASCII descriptions fit; bigger batches are split by the client."""
_NOSNIFF = (b"x-content-type-options", b"nosniff")
RATE_LIMIT_STATE = "rate_limit"
"""The request-state key where `api.deps` leaves the per-user limit's result for the headers."""
UNMATCHED_ROUTE = "<unmatched>"
# Metric labels come from a closed set, so no client can mint new time series.
_KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class BodyTooLarge(HTTPException):
    def __init__(self, limit: int) -> None:
        super().__init__(413, f"Request bodies are limited to {limit} bytes")


def _incoming_request_id(scope: Scope) -> str:
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            candidate = bytes(value).decode("latin-1")
            if _SANE_REQUEST_ID.match(candidate):
                return candidate
            break
    return uuid.uuid4().hex


class RequestContextMiddleware:
    """Gives every request an id (echoed in X-Request-ID), one log line and its metrics."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body_bytes: int = MAX_BODY_BYTES,
        limits_by_prefix: tuple[tuple[str, int], ...] = BODY_LIMITS_BY_PREFIX,
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.limits_by_prefix = limits_by_prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _incoming_request_id(scope)
        token = request_id_var.set(request_id)
        structlog.contextvars.clear_contextvars()
        started = time.perf_counter()
        status = 500
        max_body = self._body_limit(scope["path"])

        responded = False

        async def send_with_request_id(message: Message) -> None:
            nonlocal status, responded
            if message["type"] == "http.response.start":
                status, responded = message["status"], True
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode()))
                headers.append(_NOSNIFF)
                headers.extend(_rate_limit_headers(scope))
                message["headers"] = headers
            await send(message)

        received = 0

        async def receive_within_limit() -> Message:
            """Counts streamed (chunked) bodies, which carry no Content-Length to check."""
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > max_body:
                    raise BodyTooLarge(max_body)
            return message

        try:
            if self._body_too_large(scope, max_body):
                response = problem_response(
                    status=413,
                    code="payload-too-large",
                    title="Request body too large",
                    detail=f"Request bodies are limited to {max_body} bytes",
                    instance=scope["path"],
                    request_id=request_id,
                )
                await response(scope, receive, send_with_request_id)
            else:
                try:
                    await self.app(scope, receive_within_limit, send_with_request_id)
                except Exception:
                    # A bug: answered here, inside this middleware, so the 500 carries the
                    # request id and nosniff like every other answer (Starlette's outermost
                    # error middleware would send it past them).
                    if responded:
                        raise
                    log.exception("unhandled_error", path=scope["path"])
                    await internal_error(scope["path"], request_id)(
                        scope, receive, send_with_request_id
                    )
        finally:
            elapsed = time.perf_counter() - started
            route = scope.get("route")
            template = getattr(route, "path_format", UNMATCHED_ROUTE)  # without convertors
            method = scope["method"] if scope["method"] in _KNOWN_METHODS else "OTHER"
            HTTP_REQUESTS.labels(method, template, str(status)).inc()
            HTTP_LATENCY.labels(method, template).observe(elapsed)
            user_id = structlog.contextvars.get_contextvars().get("user_id")
            log.info(
                "request",
                method=scope["method"],
                path=scope["path"],
                route=template,
                status=status,
                duration_ms=round(elapsed * 1000, 2),
                user_id=user_id,
            )
            request_id_var.reset(token)

    def _body_limit(self, path: str) -> int:
        for prefix, limit in self.limits_by_prefix:
            if path.startswith(prefix):
                return limit
        return self.max_body_bytes

    @staticmethod
    def _body_too_large(scope: Scope, limit: int) -> bool:
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    return int(value) > limit
                except ValueError:
                    return True
        return False


def _rate_limit_headers(scope: Scope) -> list[tuple[bytes, bytes]]:
    """The per-user limit's headers, on every answer of an authenticated route (set by
    `api.deps.get_principal`, whichever way the route then answers)."""
    result: RateLimitResult | None = scope.get("state", {}).get(RATE_LIMIT_STATE)
    if result is None:
        return []
    return [(name.lower().encode(), value.encode()) for name, value in result.headers.items()]


METRICS_PATH = "/metrics"


class MetricsGate:
    """`/metrics` for the scraper only: `Authorization: Bearer <TASKPIPE_METRICS_TOKEN>`,
    compared in constant time. Anyone else gets the 404 of a path that does not exist. With no
    token configured the path is open in development and test and 404 in production."""

    def __init__(self, app: ASGIApp, *, token: str | None, open_without_token: bool) -> None:
        self.app = app
        self._expected = token.encode() if token else None
        self._open = open_without_token and token is None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == METRICS_PATH and not self._allowed(scope):
            response = problem_response(
                status=404,
                code="not-found",
                title="Not found",
                detail="Not Found",
                instance=scope["path"],
                request_id=request_id_var.get(),
            )
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def _allowed(self, scope: Scope) -> bool:
        if self._open:
            return True
        if self._expected is None:
            return False
        for name, value in scope["headers"]:
            if name == b"authorization":
                scheme, _, presented = bytes(value).partition(b" ")
                return scheme.lower() == b"bearer" and hmac.compare_digest(
                    presented.strip(), self._expected
                )
        return False
