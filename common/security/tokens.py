"""JWT access/refresh tokens and the opaque single-use tokens mailed to users."""

from __future__ import annotations

import hashlib
import hmac
import uuid
from base64 import urlsafe_b64encode
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

import jwt

from common.config import Settings
from common.errors import Unauthorized

ALGORITHM = "HS256"
TokenType = Literal["access", "refresh"]


@dataclass(frozen=True, slots=True)
class TokenClaims:
    user_id: uuid.UUID
    token_id: uuid.UUID
    token_type: TokenType
    issued_at: datetime
    expires_at: datetime
    family_id: uuid.UUID | None = None


def issue_token(
    settings: Settings,
    *,
    user_id: uuid.UUID,
    token_type: TokenType,
    token_id: uuid.UUID | None = None,
    family_id: uuid.UUID | None = None,
    now: datetime | None = None,
) -> tuple[str, TokenClaims]:
    issued_at = (now or datetime.now(UTC)).replace(microsecond=0)
    ttl = settings.access_token_ttl if token_type == "access" else settings.refresh_token_ttl
    claims = TokenClaims(
        user_id=user_id,
        token_id=token_id or uuid.uuid4(),
        token_type=token_type,
        issued_at=issued_at,
        expires_at=issued_at + timedelta(seconds=ttl),
        family_id=family_id,
    )
    payload: dict[str, object] = {
        "sub": str(user_id),
        "jti": str(claims.token_id),
        "type": token_type,
        "iat": issued_at,
        "exp": claims.expires_at,
        "iss": settings.jwt_issuer,
    }
    if family_id is not None:
        payload["fam"] = str(family_id)
    token = jwt.encode(payload, settings.jwt_secret.get_secret_value(), algorithm=ALGORITHM)
    return token, claims


def decode_token(settings: Settings, token: str, expected_type: TokenType) -> TokenClaims:
    """Verify signature, expiry, issuer and type; any failure is the same 401."""
    try:
        payload = jwt.decode(
            token,
            settings.jwt_secret.get_secret_value(),
            algorithms=[ALGORITHM],
            issuer=settings.jwt_issuer,
            options={"require": ["sub", "jti", "type", "iat", "exp", "iss"]},
        )
        if payload["type"] != expected_type:
            raise Unauthorized(f"Not an {expected_type} token")
        family = payload.get("fam")
        return TokenClaims(
            user_id=uuid.UUID(payload["sub"]),
            token_id=uuid.UUID(payload["jti"]),
            token_type=expected_type,
            issued_at=datetime.fromtimestamp(payload["iat"], UTC),
            expires_at=datetime.fromtimestamp(payload["exp"], UTC),
            family_id=uuid.UUID(family) if family else None,
        )
    except jwt.ExpiredSignatureError as exc:
        raise Unauthorized("Token has expired") from exc
    except (jwt.PyJWTError, ValueError, TypeError, KeyError) as exc:
        raise Unauthorized("Invalid token") from exc


def hash_token(token: str) -> str:
    """SHA-256 is right for high-entropy tokens (unlike passwords, they cannot be guessed)."""
    return hashlib.sha256(token.encode()).hexdigest()


def action_token_for(settings: Settings, token_id: uuid.UUID) -> str:
    """The mailed token text: an HMAC of the row id, rebuildable by the worker from the id."""
    digest = hmac.new(
        settings.jwt_secret.get_secret_value().encode(), b"action:" + token_id.bytes, "sha256"
    ).digest()
    return urlsafe_b64encode(digest).rstrip(b"=").decode()
