"""Password hashing (Argon2id) off the event loop, with a cap on concurrent and waiting hashes.

Argon2id at OWASP's recommended minimum (19 MiB, 2 iterations, 1 lane) costs about 27 ms of
CPU here; bcrypt at cost 12, used before, about 290 ms for no more resistance: bcrypt is not
memory-hard, so Argon2id's 19 MiB per guess is what makes GPU guessing expensive. A login
still hashes on a small dedicated thread pool, which keeps the event loop free and bounds the
CPU a burst can take; callers hash before they open a database session, so a queue of logins
never holds pooled connections. The hashing threads run at a lower OS priority than the event
loop: when the CPU is short, the requests in flight keep it and logins wait. The queue in front
of the threads is bounded too: past `max_queued` waiting hashes a login or a registration
answers 503 with Retry-After at once, instead of every one of them waiting seconds (and holding
its client's connection) behind a flood.

Hashes made before Argon2id are bcrypt (`$2b$`): they still verify, and a successful sign-in
replaces them (`needs_rehash`). bcrypt reads only the first 72 bytes of a password, so
passwords stay limited to 72 bytes: a longer one would log in to such an account with any text
appended to its first 72 bytes.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import secrets
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import argon2
import bcrypt

from common.errors import ServiceUnavailable

BCRYPT_MAX_BYTES = 72
MIN_PASSWORD_LENGTH = 10
T = TypeVar("T")
_CHARACTER_CLASSES = (
    re.compile(r"[a-z]"),
    re.compile(r"[A-Z]"),
    re.compile(r"[0-9]"),
    re.compile(r"[^a-zA-Z0-9]"),
)


def password_problems(password: str) -> str | None:
    """Why a password is unacceptable, or None. Shared by registration and reset."""
    if len(password.encode()) > BCRYPT_MAX_BYTES:
        return f"Password must be at most {BCRYPT_MAX_BYTES} bytes (UTF-8)"
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"Password must be at least {MIN_PASSWORD_LENGTH} characters"
    classes = sum(1 for pattern in _CHARACTER_CLASSES if pattern.search(password))
    if classes < 3:
        return "Password must mix at least 3 of: lower case, upper case, digits, symbols"
    return None


HASHING_NICENESS = 10
"""How much lower than the rest of the process hashing threads run (nice: 0 normal, 19 lowest)."""


def _lower_this_threads_priority() -> None:
    """On Linux the nice value belongs to the thread, so this leaves the event loop alone."""
    with contextlib.suppress(AttributeError, OSError):  # not Linux, or not permitted
        thread = threading.get_native_id()
        os.setpriority(
            os.PRIO_PROCESS, thread, os.getpriority(os.PRIO_PROCESS, thread) + HASHING_NICENESS
        )


class HashingBusy(ServiceUnavailable):
    def __init__(self) -> None:
        super().__init__(
            "Too many sign-ins at once; try again in a moment", headers={"Retry-After": "1"}
        )


def argon2id(memory_kib: int, iterations: int) -> argon2.PasswordHasher:
    """The Argon2id hasher of these costs, one lane (synchronous: the seed of a load test)."""
    return argon2.PasswordHasher(
        time_cost=iterations, memory_cost=memory_kib, parallelism=1, type=argon2.Type.ID
    )


class PasswordHasher:
    """Argon2id hashes with `memory_kib` and `iterations`; bcrypt ones from before still
    verify. The cost of a verification follows the stored hash, not the settings."""

    def __init__(
        self, memory_kib: int, iterations: int, max_concurrent: int, max_queued: int = 32
    ) -> None:
        self._argon2 = argon2id(memory_kib, iterations)
        self._pool = ThreadPoolExecutor(
            max_workers=max_concurrent,
            thread_name_prefix="password-hash",
            initializer=_lower_this_threads_priority,
        )
        self._capacity = max_concurrent + max_queued
        self._in_flight = 0
        self._dummy_hash: str | None = None

    async def hash(self, password: str) -> str:
        return await self._run(self._argon2.hash, password)

    async def verify(self, password: str, password_hash: str | None) -> bool:
        """Check a password; with no hash (unknown user) or one longer than bcrypt reads,
        still spend the time of a check, then fail."""
        if password_hash is None or len(password.encode()) > BCRYPT_MAX_BYTES:
            await self._run(self._argon2_matches, await self._dummy(), password)
            return False
        if password_hash.startswith("$2"):
            return await self._run(_bcrypt_matches, password_hash, password)
        return await self._run(self._argon2_matches, password_hash, password)

    def needs_rehash(self, password_hash: str) -> bool:
        """A bcrypt hash, or an Argon2id one of a lower memory or iteration cost than the
        settings': replace it at sign-in. Never downwards, so a mistyped lower setting weakens
        only the hashes made under it, not every account's at its next sign-in."""
        if password_hash.startswith("$2"):
            return True
        try:
            stored = argon2.extract_parameters(password_hash)
        except argon2.exceptions.InvalidHashError:
            return True
        wanted = self._argon2
        return (
            stored.type is not argon2.Type.ID
            or stored.memory_cost < wanted.memory_cost
            or stored.time_cost < wanted.time_cost
        )

    def _argon2_matches(self, password_hash: str, password: str) -> bool:
        try:
            return self._argon2.verify(password_hash, password)
        except (argon2.exceptions.VerificationError, argon2.exceptions.InvalidHashError):
            return False

    async def _dummy(self) -> str:
        if self._dummy_hash is None:
            self._dummy_hash = await self._run(self._argon2.hash, secrets.token_urlsafe(16))
        return self._dummy_hash

    async def _run(self, fn: Callable[..., T], *args: object) -> T:
        if self._in_flight >= self._capacity:
            raise HashingBusy()
        self._in_flight += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)
        finally:
            self._in_flight -= 1

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def _bcrypt_matches(password_hash: str, password: str) -> bool:
    try:
        return bcrypt.checkpw(password.encode(), password_hash.encode())
    except ValueError:  # not a well-formed bcrypt hash
        return False
