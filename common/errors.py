"""Domain errors: services raise these; the API renders them as RFC 9457 problem details."""

from __future__ import annotations

from typing import Any


class AppError(Exception):
    """Base of every expected failure. `code` becomes the problem `type`; never a 500."""

    status: int = 400
    code: str = "bad-request"
    title: str = "Bad request"
    keeps_changes: bool = False
    """True for a refusal whose bookkeeping must stay (a reused refresh token ends its session,
    then answers 401): the unit of work commits before the error is answered."""

    def __init__(
        self,
        detail: str | None = None,
        *,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        self.detail = detail or self.title
        self.headers = headers or {}
        self.extra = extra or {}
        super().__init__(self.detail)


class InvalidInput(AppError):
    """Input that passed schema validation but breaks a rule (400, optionally field-level)."""

    code = "validation-error"
    title = "Invalid input"

    def __init__(self, detail: str, *, field: str | None = None, location: str = "body") -> None:
        errors = [{"loc": [location, field], "field": field, "msg": detail}] if field else []
        super().__init__(detail, extra={"errors": errors} if errors else None)


class Unauthorized(AppError):
    status = 401
    code = "unauthorized"
    title = "Unauthorized"

    def __init__(self, detail: str = "Invalid or missing credentials") -> None:
        super().__init__(detail, headers={"WWW-Authenticate": "Bearer"})


class Forbidden(AppError):
    status = 403
    code = "forbidden"
    title = "Forbidden"


class NotFound(AppError):
    status = 404
    code = "not-found"
    title = "Not found"


class Conflict(AppError):
    status = 409
    code = "conflict"
    title = "Conflict"


class VersionConflict(Conflict):
    code = "version-conflict"
    title = "Version conflict"

    def __init__(self, current_version: int) -> None:
        super().__init__(
            f"The resource was modified; its current version is {current_version}",
            extra={"current_version": current_version},
        )


class PreconditionFailed(AppError):
    status = 412
    code = "precondition-failed"
    title = "Precondition failed"


class RateLimited(AppError):
    status = 429
    code = "rate-limited"
    title = "Too many requests"


class ServiceUnavailable(AppError):
    status = 503
    code = "service-unavailable"
    title = "Service unavailable"
