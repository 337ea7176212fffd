"""One event loop, one async engine and one Redis client per worker process.

Celery tasks are sync functions. Running each task's coroutine with `asyncio.run` against a
global engine fails ("attached to a different loop"), so each process keeps its own loop and
engine, created on first use (after the prefork fork) and disposed when the process exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from common.config import Settings, get_settings
from common.db.session import create_engine, create_session_factory
from common.redis import create_redis

T = TypeVar("T")


@dataclass
class WorkerRuntime:
    pid: int
    settings: Settings
    loop: asyncio.AbstractEventLoop
    engine: AsyncEngine
    session_factory: async_sessionmaker[AsyncSession]
    redis: Redis

    @classmethod
    def create(cls) -> WorkerRuntime:
        settings = get_settings()
        loop = asyncio.new_event_loop()
        # A job is worth a round trip more: pre-ping hands it a live connection after
        # PostgreSQL dropped the pooled ones (a restart, a failover, pg_terminate_backend).
        engine = create_engine(settings, pool_size=2, pre_ping=True)
        return cls(
            pid=os.getpid(),
            settings=settings,
            loop=loop,
            engine=engine,
            session_factory=create_session_factory(engine),
            redis=create_redis(settings),
        )

    def close(self) -> None:
        async def dispose() -> None:
            await self.redis.aclose()
            await self.engine.dispose()

        self.loop.run_until_complete(dispose())
        self.loop.close()


_runtime: WorkerRuntime | None = None


def get_runtime() -> WorkerRuntime:
    global _runtime
    if _runtime is None or _runtime.pid != os.getpid():
        _runtime = WorkerRuntime.create()
    return _runtime


def run(job: Callable[[WorkerRuntime], Coroutine[Any, Any, T]]) -> T:
    """Run a task's coroutine on this process's loop.

    If the run is interrupted (Celery's soft time limit raises inside the loop), the coroutine
    is cancelled and allowed to unwind, so its connections go back to the pool and the loop is
    clean for the next job.
    """
    runtime = get_runtime()
    task = runtime.loop.create_task(job(runtime))
    try:
        return runtime.loop.run_until_complete(task)
    except BaseException:
        if not task.done():
            task.cancel()
            with contextlib.suppress(BaseException):
                runtime.loop.run_until_complete(task)
        raise


def shutdown_runtime() -> None:
    global _runtime
    if _runtime is not None and _runtime.pid == os.getpid():
        _runtime.close()
    _runtime = None
