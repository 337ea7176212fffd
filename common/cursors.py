"""Opaque, signed cursors: where a client stopped reading a list or the change feed.

A cursor is `base64url(JSON payload + MAC)`. The payload names what the cursor is for (`kind`:
the change feed, a task list, ...), whose it is (the user id) and the position (a seq, or the
sort-key values of the last row). The MAC is HMAC-SHA256, cut to 128 bits, under a key derived
from the JWT secret for this one purpose, so a client can neither forge a position nor move a
cursor to another account or another list. Anything that does not verify is a 400
(`invalid-cursor`), never a 500 and never a silent restart.

Rotating `TASKPIPE_JWT_SECRET` invalidates every cursor: clients then start their list again,
or resync (the README's sync walkthrough says how).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import uuid
from typing import Any

import orjson

from common.errors import AppError

MAC_BYTES = 16
MAX_CURSOR_LENGTH = 2048
"""Longer than any cursor we issue (a title is at most 200 characters)."""
_PURPOSE = b"taskpipe cursor v1"


class InvalidCursor(AppError):
    code = "invalid-cursor"
    title = "Invalid cursor"

    def __init__(self, parameter: str, detail: str) -> None:
        super().__init__(
            detail,
            extra={"errors": [{"loc": ["query", parameter], "field": parameter, "msg": detail}]},
        )


class Cursors:
    """Signs and opens cursors; one per process (the key is derived once)."""

    def __init__(self, secret: str) -> None:
        self._key = hmac.new(secret.encode(), _PURPOSE, hashlib.sha256).digest()

    def sign(self, kind: str, user_id: uuid.UUID, position: dict[str, Any]) -> str:
        payload = orjson.dumps({"k": kind, "u": str(user_id), **position})
        return base64.urlsafe_b64encode(payload + self._mac(payload)).decode().rstrip("=")

    def open(self, kind: str, user_id: uuid.UUID, cursor: str, *, parameter: str) -> dict[str, Any]:
        """The position a cursor of `kind` issued to `user_id` holds; 400 for anything else
        (tampered, truncated, another user's, another list's)."""
        if len(cursor) > MAX_CURSOR_LENGTH:
            raise InvalidCursor(parameter, "The cursor is too long")
        try:
            raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        except (binascii.Error, ValueError):
            raise InvalidCursor(parameter, "The cursor is malformed") from None
        payload, mac = raw[:-MAC_BYTES], raw[-MAC_BYTES:]
        if len(raw) <= MAC_BYTES or not hmac.compare_digest(mac, self._mac(payload)):
            raise InvalidCursor(parameter, "The cursor was not issued by this server")
        position = orjson.loads(payload)
        if position.pop("k", None) != kind:
            raise InvalidCursor(parameter, f"This cursor does not belong to {parameter!r} here")
        if position.pop("u", None) != str(user_id):
            raise InvalidCursor(parameter, "This cursor was issued to another account")
        result: dict[str, Any] = position
        return result

    def _mac(self, payload: bytes) -> bytes:
        return hmac.new(self._key, payload, hashlib.sha256).digest()[:MAC_BYTES]
