"""Personal access tokens: created once, kept as a hash, checked on every request they carry.

The text is `tp_pat_` and 40 random letters and digits (238 bits): the prefix tells a token
from a JWT without parsing it and lets secret scanners recognise a leaked one; the database
keeps its SHA-256 only (a token cannot be guessed, so a slow hash would buy nothing).

Checking one must stay cheap and revocable at once. Each API process remembers a verified
token for `PAT_CACHE_SECONDS` (keyed by the hash, at most until the token expires), so a
busy script costs one indexed lookup per interval, not one per request; the lookup also
stamps `last_used_at` (at most once a minute, in the same statement). Revocation deletes the
row and marks the token in the security Redis, which the per-request admission check reads
(`common.auth.revocation`), so every process stops honouring it at once although it may
still remember it.
"""

from __future__ import annotations

import secrets
import string
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from common.accounts.repository import PersonalTokenLookup
from common.auth.tokens import hash_token
from common.db.session import ReadConnection
from common.errors import Unauthorized

PREFIX = "tp_pat_"
_ALPHABET = string.ascii_letters + string.digits
_SECRET_LENGTH = 40


def new_personal_token() -> str:
    return PREFIX + "".join(secrets.choice(_ALPHABET) for _ in range(_SECRET_LENGTH))


def is_personal_token(credential: str) -> bool:
    return credential.startswith(PREFIX)


def _well_formed(credential: str) -> bool:
    """Anything else is refused without a database round trip."""
    secret = credential.removeprefix(PREFIX)
    return len(secret) == _SECRET_LENGTH and secret.isascii() and secret.isalnum()


@dataclass(frozen=True, slots=True)
class PersonalTokenIdentity:
    token_id: uuid.UUID
    user_id: uuid.UUID
    scopes: frozenset[str]
    expires_at: datetime


class PersonalTokenVerifier:
    def __init__(self, *, cache_seconds: float, max_entries: int = 10_000) -> None:
        self._cache_seconds = cache_seconds
        self._max_entries = max_entries
        self._verified: dict[str, tuple[PersonalTokenIdentity, float]] = {}

    async def verify(
        self, credential: str, reads: ReadConnection, *, fresh: bool = False
    ) -> PersonalTokenIdentity:
        """The token's identity, or 401. `fresh`: ask PostgreSQL even if remembered (when the
        revocation marks in Redis cannot be read)."""
        if not _well_formed(credential):
            raise Unauthorized("Invalid token")
        digest = hash_token(credential)
        remembered = None if fresh else self._verified.get(digest)
        if remembered is not None:
            identity, valid_until = remembered
            if time.monotonic() < valid_until:
                return identity
            del self._verified[digest]
        identity = await _look_up(reads, digest)
        remaining = (identity.expires_at - datetime.now(UTC)).total_seconds()
        if remaining <= 0:
            raise Unauthorized("Token has expired")
        if len(self._verified) >= self._max_entries:
            del self._verified[next(iter(self._verified))]
        self._verified[digest] = (
            identity,
            time.monotonic() + min(self._cache_seconds, remaining),
        )
        return identity


async def _look_up(reads: ReadConnection, digest: str) -> PersonalTokenIdentity:
    async with reads() as connection:
        row = await PersonalTokenLookup(connection).identity(digest)
    if row is None:
        raise Unauthorized("Invalid or revoked token")
    return PersonalTokenIdentity(row.id, row.user_id, frozenset(row.scopes), row.expires_at)
