"""RFC 9457 problem details: the one shape of every error response."""

from __future__ import annotations

from typing import Any

import orjson
from pydantic import BaseModel, Field
from starlette.responses import Response

PROBLEM_MEDIA_TYPE = "application/problem+json"
TYPE_PREFIX = "urn:taskpipe:problem:"


class FieldError(BaseModel):
    loc: list[str | int] = Field(examples=[["body", "email"]])
    field: str | None = Field(default=None, examples=["email"])
    msg: str = Field(examples=["value is not a valid email address"])
    type: str | None = Field(default=None, examples=["value_error"])


class Problem(BaseModel):
    """An error. `type` is stable for programs; `title` and `detail` are for people."""

    type: str = Field(examples=["urn:taskpipe:problem:not-found"])
    title: str = Field(examples=["Not found"])
    status: int = Field(examples=[404])
    detail: str = Field(examples=["Task not found"])
    instance: str | None = Field(
        default=None,
        description="The request's path; left out only of a 431, refused before the path was "
        "read to its end",
        examples=["/api/v1/tasks/7d0f0c39-6a3e-4cbe-9e9e-0f7f4f1d3c1a"],
    )
    request_id: str | None = Field(default=None, examples=["3f2b8c1e9d4a4f0e8b7c6d5e4f3a2b1c"])
    errors: list[FieldError] | None = None
    current_version: int | None = Field(
        default=None, description="Only on version conflicts (409)", examples=[4]
    )
    parent_id: str | None = Field(
        default=None,
        description="Only on `parent-deleted` (409): the parent to restore first",
        examples=[None],
    )


def internal_error(instance: str, request_id: str | None) -> Response:
    """The one answer to a bug: nothing of the failure shown, the request id to find it."""
    return problem_response(
        status=500,
        code="internal-error",
        title="Internal server error",
        detail="Something went wrong on our side; the request id identifies it in our logs",
        instance=instance,
        request_id=request_id,
    )


def problem_response(
    *,
    status: int,
    code: str,
    title: str,
    detail: str,
    instance: str,
    request_id: str | None,
    headers: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
) -> Response:
    body: dict[str, Any] = {
        "type": TYPE_PREFIX + code,
        "title": title,
        "status": status,
        "detail": detail,
        "instance": instance,
        "request_id": request_id,
    }
    if extra:
        body.update(extra)
    return Response(
        orjson.dumps(body), status_code=status, headers=headers, media_type=PROBLEM_MEDIA_TYPE
    )


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` entries documenting each error status with the Problem schema."""
    descriptions = {
        400: "Invalid input (field-level `errors`)",
        401: "Missing, invalid or expired credentials",
        403: "Forbidden",
        404: "Not found (also for other users' resources)",
        409: "Conflict",
        410: "Gone",
        412: "Precondition failed (stale If-Match)",
        413: "Request body too large",
        423: "Account temporarily locked (see Retry-After)",
        429: "Rate limited (see Retry-After and RateLimit-* headers)",
        431: "Request head too large (at most 16 KiB and 100 header fields, request line included)",
        503: "A dependency is unavailable",
    }
    return {
        status: {
            "description": descriptions.get(status, "Error"),
            "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        for status in statuses
    }
