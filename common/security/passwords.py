"""bcrypt hashing off the event loop, with a cap on concurrent and waiting hashes.

bcrypt is deliberately slow CPU work (~250 ms at cost 12). Hashing on a small dedicated thread
pool keeps the event loop free and bounds the CPU a login burst can take; callers hash before
they open a database session, so a queue of logins never holds pooled connections. The hashing
threads run at a lower OS priority than the event loop: when the CPU is short, the requests in
flight keep it and logins wait (a login is 250 ms anyway; a task list must stay at a few ms).
The queue in front of the threads is bounded too: past `max_queued` waiting hashes a login or a
registration answers 503 with Retry-After at once, instead of every one of them waiting seconds
(and holding its client's connection) behind a flood.

bcrypt reads only the first 72 bytes of a password. Registration refuses longer ones, and a
login with a longer one fails: otherwise any text appended to a 72-byte password would log in.
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


class PasswordHasher:
    def __init__(self, rounds: int, max_concurrent: int, max_queued: int = 32) -> None:
        self._rounds = rounds
        self._pool = ThreadPoolExecutor(
            max_workers=max_concurrent,
            thread_name_prefix="bcrypt",
            initializer=_lower_this_threads_priority,
        )
        self._capacity = max_concurrent + max_queued
        self._in_flight = 0
        self._dummy_hash: bytes | None = None

    async def hash(self, password: str) -> str:
        salt = bcrypt.gensalt(rounds=self._rounds)
        hashed = await self._run(bcrypt.hashpw, password.encode(), salt)
        return hashed.decode()

    async def verify(self, password: str, password_hash: str | None) -> bool:
        """Check a password; with no hash (unknown user) or one longer than bcrypt reads,
        still spend the same time, then fail."""
        encoded = password.encode()
        too_long = len(encoded) > BCRYPT_MAX_BYTES
        if password_hash is None or too_long:
            await self._run(bcrypt.checkpw, encoded[:BCRYPT_MAX_BYTES], await self._dummy())
            return False
        return await self._run(bcrypt.checkpw, encoded, password_hash.encode())

    async def _dummy(self) -> bytes:
        if self._dummy_hash is None:
            salt = bcrypt.gensalt(rounds=self._rounds)
            self._dummy_hash = await self._run(bcrypt.hashpw, secrets.token_bytes(16), salt)
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
