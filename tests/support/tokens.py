"""Hand-made tokens for hostile-input tests (forged, expired, alg none, wrong type)."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime, timedelta

import jwt

from common.config import Settings


def _b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def claims(user_id: str, *, token_type: str = "access", **overrides: object) -> dict[str, object]:
    now = datetime.now(UTC)
    payload: dict[str, object] = {
        "sub": user_id,
        "jti": str(uuid.uuid4()),
        "type": token_type,
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(minutes=5)).timestamp()),
        "iss": "taskpipe",
    }
    payload.update(overrides)
    return {k: v for k, v in payload.items() if v is not None}


def signed(settings: Settings, payload: dict[str, object], *, secret: str | None = None) -> str:
    key = secret or settings.jwt_secret.get_secret_value()
    return jwt.encode(payload, key, algorithm="HS256")


def alg_none(payload: dict[str, object]) -> str:
    return f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(payload)}."
