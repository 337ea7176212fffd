"""Alembic owns the schema: it upgrades, downgrades and upgrades again, and matches the models."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator

import asyncpg
import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, inspect
from sqlalchemy.ext.asyncio import create_async_engine

from common.models.base import Base
from tests.conftest import _BASE_DB_URL, _server_dsn, alembic_config

SCRATCH = f"taskpipe_migrations_{uuid.uuid4().hex[:8]}"
SCRATCH_URL = _BASE_DB_URL.set(database=SCRATCH).render_as_string(hide_password=False)


async def _admin(sql: str) -> None:
    connection = await asyncpg.connect(_server_dsn("postgres"))
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


@pytest.fixture(scope="module")
def scratch_database() -> Iterator[str]:
    asyncio.run(_admin(f'CREATE DATABASE "{SCRATCH}"'))
    yield SCRATCH_URL
    asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{SCRATCH}" WITH (FORCE)'))


def _alembic(url: str, action: str, target: str) -> None:
    config = alembic_config()
    config.attributes["database_url"] = url
    getattr(command, action)(config, target)


def _schema_state(url: str) -> tuple[list[str], list[tuple[object, ...]]]:
    async def inspect_db() -> tuple[list[str], list[tuple[object, ...]]]:
        engine = create_async_engine(url)
        try:
            async with engine.connect() as connection:

                def read(sync: Connection) -> tuple[list[str], list[tuple[object, ...]]]:
                    tables = sorted(inspect(sync).get_table_names())
                    diff = compare_metadata(
                        MigrationContext.configure(sync, opts={"compare_type": True}), Base.metadata
                    )
                    return tables, diff

                return await connection.run_sync(read)
        finally:
            await engine.dispose()

    return asyncio.run(inspect_db())


def test_upgrade_downgrade_upgrade_and_models_match(scratch_database: str) -> None:
    _alembic(scratch_database, "upgrade", "head")
    tables, diff = _schema_state(scratch_database)
    assert set(Base.metadata.tables) <= set(tables)
    assert diff == [], diff

    _alembic(scratch_database, "downgrade", "base")
    tables, _ = _schema_state(scratch_database)
    assert tables == ["alembic_version"]

    _alembic(scratch_database, "upgrade", "head")
    tables, diff = _schema_state(scratch_database)
    assert set(Base.metadata.tables) <= set(tables)
    assert diff == []


def test_0005_enters_existing_categories_and_live_tasks_in_the_feed(
    scratch_database: str,
) -> None:
    _alembic(scratch_database, "downgrade", "base")
    _alembic(scratch_database, "upgrade", "0004")
    users = [uuid.uuid4(), uuid.uuid4()]

    async def before() -> None:
        connection = await asyncpg.connect(_plain(scratch_database))
        try:
            for number, user in enumerate(users):
                await connection.execute(
                    "INSERT INTO users (id, email, password_hash, full_name)"
                    " VALUES ($1, $2, 'x', 'x')",
                    user,
                    f"migrated{number}@example.com",
                )
                await connection.execute(
                    "INSERT INTO categories (id, user_id, name) VALUES ($1, $2, 'Work')",
                    uuid.uuid4(),
                    user,
                )
                for deleted in (False, False, True):
                    await connection.execute(
                        "INSERT INTO tasks (id, user_id, title, deleted_at)"
                        " VALUES ($1, $2, 'Old task', CASE WHEN $3 THEN now() END)",
                        uuid.uuid4(),
                        user,
                        deleted,
                    )
        finally:
            await connection.close()

    async def after() -> list[tuple[object, ...]]:
        connection = await asyncpg.connect(_plain(scratch_database))
        try:
            rows = await connection.fetch(
                "SELECT f.user_id, f.kind, f.seq, f.op, c.last_seq FROM change_feed f"
                " JOIN change_counters c USING (user_id) ORDER BY f.user_id, f.seq"
            )
            return [tuple(row) for row in rows]
        finally:
            await connection.close()

    asyncio.run(before())
    _alembic(scratch_database, "upgrade", "head")

    rows = asyncio.run(after())
    for user in users:
        assert [row[1:] for row in rows if row[0] == user] == [
            ("category", 1, "upsert", 3),
            ("task", 2, "upsert", 3),
            ("task", 3, "upsert", 3),
        ]


def _plain(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")
