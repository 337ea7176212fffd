"""Outages of the test database only: never the machine's other databases."""

from __future__ import annotations

import os

import asyncpg


def admin_dsn() -> str:
    return os.environ["TASKPIPE_DATABASE_URL"].replace("postgresql+asyncpg://", "postgresql://")


async def terminate_backends() -> int:
    """`pg_terminate_backend` every other connection to the test database (a restart, a
    failover, as the API and the workers see it); the count of connections dropped."""
    admin = await asyncpg.connect(admin_dsn())
    try:
        dropped: int = await admin.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    finally:
        await admin.close()
    return dropped
