"""Which database errors mean "PostgreSQL is out of reach for a moment" (retry) rather than
a bug: shared by the API (503 + Retry-After) and the worker (retry the job)."""

from __future__ import annotations

import asyncpg
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

# asyncpg's errors for a server that is going away, starting up or full.
_UNAVAILABLE = (
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.TooManyConnectionsError,
    asyncpg.exceptions.ConnectionDoesNotExistError,
    asyncpg.exceptions.InterfaceError,
    OSError,
)


def database_unavailable(exc: BaseException) -> bool:
    """A dropped or refused connection, a restarting server, or an exhausted pool."""
    if isinstance(exc, (PoolTimeoutError, *_UNAVAILABLE)):
        return True
    if isinstance(exc, DBAPIError):
        # SQLAlchemy's adapter wraps asyncpg's exception: it is the cause of `orig`.
        driver_error = exc.orig.__cause__ if exc.orig is not None else None
        return exc.connection_invalidated or isinstance(driver_error, _UNAVAILABLE)
    return False
