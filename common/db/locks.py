"""A PostgreSQL advisory lock held across slow work outside any transaction (an HTTP call).

Session-level, on a connection of its own in autocommit: it outlives the transactions of the
work it guards, and it goes with the connection if the process holding it dies (a SIGKILLed
worker's lock is free as soon as PostgreSQL sees its connection close).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from common.logging import get_logger

log = get_logger(__name__)


@contextlib.asynccontextmanager
async def try_advisory_lock(engine: AsyncEngine, key: str) -> AsyncIterator[bool]:
    """Yield True while this process holds the lock on `key`, False if another holds it."""
    lock_id = func.hashtextextended(key, 0)
    async with engine.connect() as connection:
        connection = await connection.execution_options(isolation_level="AUTOCOMMIT")
        locked = bool(await connection.scalar(select(func.pg_try_advisory_lock(lock_id))))
        try:
            yield locked
        finally:
            if locked:
                try:
                    await connection.execute(select(func.pg_advisory_unlock(lock_id)))
                except Exception as exc:  # the connection died, and its lock with it
                    log.warning("advisory_unlock_failed", key=key, error=repr(exc))
                    await connection.invalidate()
