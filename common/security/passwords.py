"""bcrypt hashing off the event loop, with a cap on concurrent hashes.

bcrypt is deliberately slow CPU work (~250 ms at cost 12). Hashing on a small dedicated thread
pool keeps the event loop free and bounds the CPU a login burst can take; callers hash before
they open a database session, so a queue of logins never holds pooled connections. The hashing
threads run at a lower OS priority than the event loop: when the CPU is short, the requests in
flight keep it and logins wait (a login is 250 ms anyway; a task list must stay at a few ms).
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


class PasswordHasher:
    def __init__(self, rounds: int, max_concurrent: int) -> None:
        self._rounds = rounds
        self._pool = ThreadPoolExecutor(
            max_workers=max_concurrent,
            thread_name_prefix="bcrypt",
            initializer=_lower_this_threads_priority,
        )
        self._dummy_hash: bytes | None = None

    async def hash(self, password: str) -> str:
        salt = bcrypt.gensalt(rounds=self._rounds)
        hashed = await self._run(bcrypt.hashpw, password.encode(), salt)
        return hashed.decode()

    async def verify(self, password: str, password_hash: str | None) -> bool:
        """Check a password; with no hash (unknown user) still spend the same time, then fail."""
        encoded = password.encode()
        if len(encoded) > BCRYPT_MAX_BYTES:
            encoded = encoded[:BCRYPT_MAX_BYTES]
        if password_hash is None:
            await self._run(bcrypt.checkpw, encoded, await self._get_dummy_hash())
            return False
        return await self._run(bcrypt.checkpw, encoded, password_hash.encode())

    async def _get_dummy_hash(self) -> bytes:
        if self._dummy_hash is None:
            salt = bcrypt.gensalt(rounds=self._rounds)
            self._dummy_hash = await self._run(bcrypt.hashpw, secrets.token_bytes(16), salt)
        return self._dummy_hash

    async def _run(self, fn: Callable[..., T], *args: object) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
