"""The async engine, session factory and read connections; one engine per process (per event
loop in the worker)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import orjson
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from common.config import Settings


def create_engine(
    settings: Settings,
    *,
    pool_size: int | None = None,
    pre_ping: bool | None = None,
    statement_timeout_ms: int = 0,
) -> AsyncEngine:
    """`hide_parameters`: bound values (password hashes, addresses, titles) never reach a log
    line or an exception message. `statement_timeout_ms` (0: none) is sent with the connection's
    startup packet, so it costs no round trip."""
    server_settings = (
        {"statement_timeout": str(statement_timeout_ms)} if statement_timeout_ms else {}
    )
    return create_async_engine(
        settings.database_url,
        pool_size=pool_size or settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_pre_ping=settings.db_pool_pre_ping if pre_ping is None else pre_ping,
        pool_recycle=1800,
        json_deserializer=orjson.loads,
        hide_parameters=True,
        connect_args={"server_settings": server_settings},
    )


def create_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


ReadConnection = Callable[[], AbstractAsyncContextManager[AsyncConnection]]
"""Opens a connection for reads: `async with reads() as connection: ...`."""


def autocommit_reads(engine: AsyncEngine) -> ReadConnection:
    """Connections from the engine's pool in autocommit mode: a lone SELECT then costs one
    round trip, not three (no BEGIN before it, no ROLLBACK when the connection goes back)."""
    return engine.execution_options(isolation_level="AUTOCOMMIT").connect


def session_reads(session: AsyncSession) -> ReadConnection:
    """Reads on a session's own connection, inside its transaction (sees its own writes)."""

    @asynccontextmanager
    async def connect() -> AsyncIterator[AsyncConnection]:
        yield await session.connection()

    return connect
