"""The run's database: dropped and re-created, then migrated, so every run starts the same."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import create_async_engine

from loadtests.runner import PY, ROOT, RunError


async def recreate_database(url: URL) -> None:
    """Drop and re-create the run's database, so every run starts from the same state."""
    name = url.database or ""
    if not re.fullmatch(r"[a-z0-9_]*load[a-z0-9_]*", name):
        raise RunError(f"refusing to drop database {name!r}: not a load-test database name")
    engine = create_async_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as connection:
            await connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            await connection.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        await engine.dispose()


def migrate(environ: dict[str, str], logs: Path) -> None:
    logs.mkdir(parents=True, exist_ok=True)
    with (logs / "migrate.log").open("ab") as handle:
        result = subprocess.run(
            [PY, "-m", "alembic", "upgrade", "head"],
            cwd=ROOT,
            env=environ,
            stdout=handle,
            stderr=subprocess.STDOUT,
            check=False,
        )
    if result.returncode != 0:
        raise RunError(f"alembic upgrade head failed; see {logs / 'migrate.log'}")
