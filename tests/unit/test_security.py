"""Access tokens verified once and remembered; password hashing at a lower OS priority."""

from __future__ import annotations

import os
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from common.auth.tokens import AccessTokenVerifier, issue_token
from common.config import Settings
from common.errors import Unauthorized
from common.security.passwords import HASHING_NICENESS, PasswordHasher

SETTINGS = Settings(jwt_secret="unit-test-secret-of-at-least-32-characters!", access_token_ttl=60)


def _access_token(*, expires_in: float = 60, user_id: uuid.UUID | None = None) -> str:
    issued = datetime.now(UTC) - timedelta(seconds=SETTINGS.access_token_ttl - expires_in)
    token, _ = issue_token(
        SETTINGS,
        user_id=user_id or uuid.uuid4(),
        token_type="access",
        family_id=uuid.uuid4(),
        now=issued,
    )
    return token


def test_a_verified_token_is_remembered_with_its_claims() -> None:
    verifier = AccessTokenVerifier(SETTINGS)
    user_id = uuid.uuid4()
    token = _access_token(user_id=user_id)
    first = verifier.verify(token)
    assert first.user_id == user_id
    assert verifier.verify(token) is first


def test_an_altered_token_is_refused_even_when_the_real_one_is_remembered() -> None:
    verifier = AccessTokenVerifier(SETTINGS)
    token = _access_token()
    verifier.verify(token)
    header, payload, signature = token.split(".")
    forged = ".".join(
        (header, payload, signature[:-2] + ("AA" if signature[-2:] != "AA" else "BB"))
    )
    with pytest.raises(Unauthorized):
        verifier.verify(forged)


def test_a_remembered_token_is_refused_once_it_expires() -> None:
    verifier = AccessTokenVerifier(SETTINGS)
    token = _access_token(expires_in=1.5)
    verifier.verify(token)
    time.sleep(1.6)
    with pytest.raises(Unauthorized, match="expired"):
        verifier.verify(token)


def test_a_refresh_token_is_not_an_access_token() -> None:
    token, _ = issue_token(SETTINGS, user_id=uuid.uuid4(), token_type="refresh")
    with pytest.raises(Unauthorized):
        AccessTokenVerifier(SETTINGS).verify(token)


def test_the_memory_is_bounded_and_forgets_the_oldest_first() -> None:
    verifier = AccessTokenVerifier(SETTINGS, max_entries=2)
    oldest, middle, newest = (_access_token() for _ in range(3))
    claims = [verifier.verify(token) for token in (oldest, middle, newest)]
    assert verifier.verify(newest) is claims[2]
    assert verifier.verify(middle) is claims[1]
    assert verifier.verify(oldest) is not claims[0]  # forgotten, so verified afresh


def _own_niceness() -> int:
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


async def test_hashing_threads_run_at_a_lower_priority_than_the_caller() -> None:
    hasher = PasswordHasher(1024, 1, max_concurrent=1)
    try:
        in_pool = await hasher._run(_own_niceness)
    finally:
        hasher.shutdown()
    assert in_pool == min(19, _own_niceness() + HASHING_NICENESS)
