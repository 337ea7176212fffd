"""Test fixtures: a throwaway PostgreSQL database migrated with Alembic, real Redis, real SMTP.

Isolation: each test runs inside one outer transaction that is rolled back at the end, with
the app's sessions joined through SAVEPOINTs, so code under test may commit freely. Tests
whose data must be seen by another process (a real Celery worker) use `live_client`, which
commits for real and truncates every table afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

from sqlalchemy.engine import make_url

# The environment is set before any Taskpipe module reads its settings.
_BASE_DB_URL = make_url(
    os.environ.get("TASKPIPE_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/taskpipe")
)
TEST_DATABASE = f"taskpipe_test_{uuid.uuid4().hex[:10]}"

from devstack.machine import REDIS_CLAIM_KEY, RedisClaim, free_port  # noqa: E402

# A Redis database index no other run on this machine is using right now.
REDIS_CLAIM = RedisClaim(
    os.environ.get("TASKPIPE_REDIS_URL", "redis://127.0.0.1:6379/0"), owner=TEST_DATABASE
)

from tests.support.smtp import SMTPServer  # noqa: E402

SMTP_PORT = free_port()
HEARTBEAT_DIR = Path(os.environ.get("TMPDIR", "/tmp")) / f"taskpipe-test-{TEST_DATABASE}"
HEARTBEAT_DIR.mkdir(parents=True, exist_ok=True)
os.environ.update(
    {
        "TASKPIPE_ENV": "test",
        "TASKPIPE_DATABASE_URL": _BASE_DB_URL.set(database=TEST_DATABASE).render_as_string(
            hide_password=False
        ),
        "TASKPIPE_REDIS_URL": REDIS_CLAIM.url(),
        "TASKPIPE_PASSWORD_HASH_MEMORY_KIB": "1024",  # Argon2id at a test cost: about 1 ms
        "TASKPIPE_PASSWORD_HASH_ITERATIONS": "1",
        "TASKPIPE_LOG_LEVEL": "WARNING",
        "TASKPIPE_SMTP_HOST": "127.0.0.1",
        "TASKPIPE_SMTP_PORT": str(SMTP_PORT),
        "TASKPIPE_HEARTBEAT_DIR": str(HEARTBEAT_DIR),
        "TASKPIPE_PUBLIC_URL": "http://testserver",
        "TASKPIPE_MAIL_RETRY_BACKOFF_SECONDS": "1",
        # Seeding 50k-row fixtures through the API's engine may take seconds on a busy box;
        # the timeout's own tests set theirs.
        "TASKPIPE_DB_STATEMENT_TIMEOUT_MS": "60000",
    }
)
os.environ.pop("TASKPIPE_BROKER_URL", None)

import asyncpg  # noqa: E402
import httpx  # noqa: E402
import pytest  # noqa: E402
from alembic import command  # noqa: E402
from alembic.config import Config  # noqa: E402
from fastapi import FastAPI  # noqa: E402
from redis.asyncio import Redis  # noqa: E402
from sqlalchemy import text  # noqa: E402
from sqlalchemy.exc import DBAPIError  # noqa: E402
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, async_sessionmaker  # noqa: E402

from api.main import create_app  # noqa: E402
from api.resources import Resources  # noqa: E402
from common.config import Settings, get_settings  # noqa: E402
from common.models.base import Base  # noqa: E402
from tests.support.smtp import MailCatcher  # noqa: E402
from tests.support.worker import WorkerProcess  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
# The drills (tests/drills) run real outages for minutes: `make test-drills` runs them.
collect_ignore = [] if os.environ.get("TASKPIPE_DRILLS") else ["drills"]


def _server_dsn(database: str) -> str:
    url = _BASE_DB_URL.set(drivername="postgresql", database=database)
    return url.render_as_string(hide_password=False)


async def _create_database() -> None:
    connection = await asyncpg.connect(_server_dsn("postgres"))
    try:
        await connection.execute(f'CREATE DATABASE "{TEST_DATABASE}"')
    finally:
        await connection.close()


async def _drop_database() -> None:
    connection = await asyncpg.connect(_server_dsn("postgres"))
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{TEST_DATABASE}" WITH (FORCE)')
    finally:
        await connection.close()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Give the claimed Redis database back."""
    REDIS_CLAIM.release()


def alembic_config() -> Config:
    config = Config(str(ROOT / "alembic.ini"))
    config.attributes["configure_logger"] = False
    return config


@pytest.fixture(scope="session")
def database() -> Iterator[str]:
    get_settings.cache_clear()
    asyncio.run(_create_database())
    command.upgrade(alembic_config(), "head")
    yield TEST_DATABASE
    asyncio.run(_drop_database())


@pytest.fixture(scope="session")
def settings(database: str) -> Settings:
    return get_settings()


@pytest.fixture(scope="session")
async def resources(settings: Settings) -> AsyncIterator[Resources]:
    res = Resources.create(settings)
    yield res
    await res.close()


@pytest.fixture(scope="session")
def app(settings: Settings) -> FastAPI:
    return create_app(settings)


@pytest.fixture(autouse=True)
async def _clean_redis(request: pytest.FixtureRequest) -> AsyncIterator[None]:
    if "database" not in request.fixturenames:
        yield
        return
    redis = Redis.from_url(os.environ["TASKPIPE_REDIS_URL"])
    async with redis.pipeline(transaction=True) as pipe:
        pipe.flushdb()
        pipe.set(REDIS_CLAIM_KEY, TEST_DATABASE, ex=3600)
        await pipe.execute()
    yield
    await redis.aclose()


@pytest.fixture
async def db_connection(resources: Resources) -> AsyncIterator[AsyncConnection]:
    async with resources.engine.connect() as connection:
        transaction = await connection.begin()
        yield connection
        await transaction.rollback()


@pytest.fixture
def test_resources(resources: Resources, db_connection: AsyncConnection) -> Resources:
    """The app's resources with every session joined to the test's outer transaction."""
    factory = async_sessionmaker(
        bind=db_connection,
        join_transaction_mode="create_savepoint",
        expire_on_commit=False,
        autoflush=False,
    )
    return dataclasses.replace(
        resources, session_factory=factory, reads=lambda: contextlib.nullcontext(db_connection)
    )


@pytest.fixture
async def session(test_resources: Resources) -> AsyncIterator[AsyncSession]:
    async with test_resources.session_factory() as db_session:
        yield db_session


@pytest.fixture
async def client(app: FastAPI, test_resources: Resources) -> AsyncIterator[httpx.AsyncClient]:
    app.state.resources = test_resources
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http
    app.state.resources = None


async def _truncate_all(resources: Resources) -> None:
    """Empty every table; retried, since a worker process may still hold locks briefly."""
    tables = ", ".join(f'"{table.name}"' for table in Base.metadata.sorted_tables)
    for attempt in range(5):
        try:
            async with resources.engine.begin() as connection:
                await connection.execute(text("SET LOCAL lock_timeout = '5s'"))
                await connection.execute(text(f"TRUNCATE {tables} CASCADE"))
            return
        except DBAPIError:
            if attempt == 4:
                raise
            await asyncio.sleep(0.5)


@pytest.fixture
async def committed_data(resources: Resources) -> AsyncIterator[None]:
    """For tests whose writes really commit: every table is emptied afterwards."""
    yield
    await _truncate_all(resources)


@pytest.fixture
async def live_client(
    app: FastAPI, resources: Resources, committed_data: None
) -> AsyncIterator[httpx.AsyncClient]:
    """A client whose writes really commit (for tests with a second process or real races)."""
    app.state.resources = resources
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield http
    finally:
        app.state.resources = None


@pytest.fixture(scope="session")
def smtp_server() -> Iterator[SMTPServer]:
    server = SMTPServer(port=SMTP_PORT)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def mailbox(smtp_server: SMTPServer) -> Iterator[MailCatcher]:
    smtp_server.catcher.clear()
    yield smtp_server.catcher
    smtp_server.catcher.clear()


@pytest.fixture(scope="module")
def celery_worker(
    database: str, smtp_server: SMTPServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WorkerProcess]:
    """A real worker for one test module (so no worker is left consuming in other modules)."""
    worker = WorkerProcess(env={}, log_path=tmp_path_factory.mktemp("worker") / "worker.log")
    worker.start()
    yield worker
    worker.stop()


@pytest.fixture
def configure(app: FastAPI, test_resources: Resources):  # type: ignore[no-untyped-def]
    """Swap settings for one test: `configure(login_rate_limit=2)` (app state is per test)."""
    from api.resources import revocations_for
    from common.auth.lockout import LoginLockout
    from common.auth.tokens import AccessTokenVerifier
    from common.ratelimit import RateLimiter

    def apply(**overrides: object) -> Settings:
        settings = test_resources.settings.model_copy(update=overrides)
        security = test_resources.security_redis
        app.state.resources = dataclasses.replace(
            test_resources,
            settings=settings,
            limiter=RateLimiter(security, fail_open=settings.rate_limit_fail_open),
            lockout=LoginLockout(security, settings),
            revocations=revocations_for(security, settings),
            access_tokens=AccessTokenVerifier(settings),
        )
        return settings

    return apply


@pytest.fixture
async def broker(resources: Resources) -> Redis:
    """The test Redis database, which is also the Celery broker (queues are Redis lists)."""
    return resources.redis
