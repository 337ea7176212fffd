"""HTTP validators: ETags, If-None-Match (304) and If-Match (412), for JSON bodies held as bytes.

The ETag is a strong validator derived from the exact response body, so it changes whenever
anything shown changes (a category renamed, a task assigned), whether the bytes came from the
cache or from PostgreSQL, on every replica alike.
"""

from __future__ import annotations

import hashlib
from typing import Any

from starlette.responses import Response

from api.problems import problem_responses

JSON = "application/json"
CACHE_CONTROL = "private, no-cache"


def etag_for(body: bytes) -> str:
    return '"' + hashlib.blake2b(body, digest_size=16).hexdigest() + '"'


def _entity_tags(header: str) -> list[tuple[bool, str]]:
    """`W/"a", "b"` -> [(True, '"a"'), (False, '"b"')]; malformed items are skipped."""
    tags = []
    for raw in header.split(","):
        item = raw.strip()
        weak = item.startswith("W/")
        opaque = item[2:] if weak else item
        if len(opaque) >= 2 and opaque[0] == opaque[-1] == '"':
            tags.append((weak, opaque))
    return tags


def none_match(header: str | None, etag: str) -> bool:
    """True when If-None-Match lists the current ETag (weak comparison): answer 304."""
    if header is None:
        return False
    if header.strip() == "*":
        return True
    return any(opaque == etag for _, opaque in _entity_tags(header))


def match(header: str, etag: str) -> bool:
    """True when If-Match is satisfied (strong comparison; `*` matches any current task)."""
    if header.strip() == "*":
        return True
    return any(not weak and opaque == etag for weak, opaque in _entity_tags(header))


def json_response(
    body: bytes, *, status_code: int = 200, headers: dict[str, str] | None = None
) -> Response:
    all_headers = {"ETag": etag_for(body), "Cache-Control": CACHE_CONTROL, **(headers or {})}
    return Response(body, status_code=status_code, media_type=JSON, headers=all_headers)


def conditional_json_response(body: bytes, if_none_match: str | None) -> Response:
    """200 with the body, or 304 without it when the client's copy is current."""
    etag = etag_for(body)
    if none_match(if_none_match, etag):
        return Response(status_code=304, headers={"ETag": etag, "Cache-Control": CACHE_CONTROL})
    return json_response(body)


ETAG_HEADER = {
    "ETag": {
        "description": "Strong validator of this representation: send it back in "
        "If-None-Match (304 when unchanged) or If-Match (412 when changed)",
        "schema": {"type": "string", "example": '"3f2b8c1e9d4a4f0e8b7c6d5e4f3a2b1c"'},
    }
}
NOT_MODIFIED: dict[int | str, dict[str, Any]] = {
    304: {
        "description": "Not modified: your copy (If-None-Match) is current",
        "headers": ETAG_HEADER,
    }
}


def documented_problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """`problem_responses` with this resource's wording for the statuses it adds."""
    responses = problem_responses(*statuses)
    extra = {
        400: "Invalid input: field-level `errors` name the body field, query parameter or "
        "path parameter (a malformed UUID in the path is a 400 too)",
        404: "Not found: missing, deleted, or another user's (never told apart)",
        409: "Conflict (see the problem `type`)",
        410: "Gone: the cursor is older than the kept tombstones (or newer than the server's "
        "data): resync from the start (`resync-required`)",
        412: "Precondition failed: If-Match names a representation that is no longer current",
        422: "Idempotency-Key already used with a different request body",
        428: "Precondition required: send `version` in the body or an If-Match header",
    }
    for status, description in extra.items():
        if status in responses:
            responses[status]["description"] = description
    return responses


NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
"""For answers that carry a secret (tokens, signing secrets): no cache on the way keeps them
(RFC 6749, section 5.1)."""


def no_store(response: Response) -> None:
    response.headers.update(NO_STORE)
