"""One event loop, one async engine, one Redis client and one job publisher per worker
process, and the unit of work every job runs in.

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

from celery.signals import worker_process_shutdown
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from common.cache import ResponseCache
from common.config import Settings, get_settings
from common.cursors import Cursors
from common.db.session import create_engine, create_session_factory
from common.db.uow import Subscribers, UnitOfWork
from common.jobs import JobPublisher, create_producer
from common.redis import create_redis
from common.subscribers import change_subscribers

T = TypeVar("T")


@dataclass
class WorkerRuntime:
    pid: int
    settings: Settings
    loop: asyncio.AbstractEventLoop
    engine: AsyncEngine
    session_factory: async_sessionmaker[AsyncSession]
    redis: Redis
    publisher: JobPublisher
    cache: ResponseCache
    subscribers: Subscribers
    cursors: Cursors
    """Signs the `next_cursor` of the pages the cache warmer builds, as the API does."""

    @classmethod
    def create(cls) -> WorkerRuntime:
        settings = get_settings()
        loop = asyncio.new_event_loop()
        # A job is worth a round trip more: pre-ping hands it a live connection after
        # PostgreSQL dropped the pooled ones (a restart, a failover, pg_terminate_backend).
        engine = create_engine(settings, pool_size=2, pre_ping=True)
        redis = create_redis(settings)
        cache = ResponseCache(redis, ttl_seconds=settings.cache_ttl_seconds)
        return cls(
            pid=os.getpid(),
            settings=settings,
            loop=loop,
            engine=engine,
            session_factory=create_session_factory(engine),
            redis=redis,
            # A producer of its own (as the API's): the runtime needs no worker module.
            publisher=JobPublisher(create_producer(settings)),
            cache=cache,
            subscribers=change_subscribers(cache),
            cursors=Cursors(settings.jwt_secret.get_secret_value()),
        )

    def unit_of_work(self) -> UnitOfWork:
        """A job's one unit of work: `async with runtime.unit_of_work() as uow:` commits
        when the block succeeds, then publishes the jobs it enqueued."""
        return UnitOfWork(self.session_factory(), self.publisher, self.subscribers)

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


@worker_process_shutdown.connect
def shutdown_runtime(**_: Any) -> None:
    global _runtime
    if _runtime is not None and _runtime.pid == os.getpid():
        _runtime.close()
    _runtime = None
