"""Helpers for task and category tests: create through the API, in the future, and count SQL."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from prometheus_client import REGISTRY
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.support.factories import Account

TASKS = "/api/v1/tasks"
CATEGORIES = "/api/v1/categories"
_names = itertools.count(1)


def future(days: float = 7) -> str:
    return (datetime.now(UTC) + timedelta(days=days)).isoformat()


def past(days: float = 1) -> str:
    return (datetime.now(UTC) - timedelta(days=days)).isoformat()


async def create_task(client: httpx.AsyncClient, account: Account, **fields: Any) -> dict[str, Any]:
    body = {"title": f"Task number {next(_names)}", **fields}
    response = await client.post(TASKS, json=body, headers=account.headers)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


async def create_category(
    client: httpx.AsyncClient, account: Account, name: str | None = None, **fields: Any
) -> dict[str, Any]:
    body = {"name": name or f"Category {next(_names)}", **fields}
    response = await client.post(CATEGORIES, json=body, headers=account.headers)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


async def assign(
    client: httpx.AsyncClient, account: Account, task_id: str, category_id: str
) -> dict[str, Any]:
    response = await client.post(
        f"{TASKS}/{task_id}/categories/{category_id}", headers=account.headers
    )
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


async def list_tasks(client: httpx.AsyncClient, account: Account, **params: Any) -> dict[str, Any]:
    response = await client.get(TASKS, params=params, headers=account.headers)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def cache_requests(kind: str, result: str) -> float:
    return metric("taskpipe_cache_requests_total", kind=kind, result=result)


class StatementCounter:
    def __init__(self) -> None:
        self.statements: list[str] = []

    @property
    def count(self) -> int:
        return len(self.statements)


@contextmanager
def count_statements(engine: AsyncEngine) -> Iterator[StatementCounter]:
    """Every SQL statement sent through the engine while the block runs."""
    counter = StatementCounter()

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        counter.statements.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        yield counter
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)


SYNC = "/api/v1/sync"


async def sync_page(
    client: httpx.AsyncClient, account: Account, since: str | None = None, **params: Any
) -> dict[str, Any]:
    if since is not None:
        params["since"] = since
    response = await client.get(SYNC, params=params, headers=account.headers)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


async def follow_feed(
    client: httpx.AsyncClient, account: Account, since: str | None = None, **params: Any
) -> tuple[list[dict[str, Any]], str]:
    """Every change after `since`, following `next_cursor` while `has_more`; and the last
    cursor."""
    changes: list[dict[str, Any]] = []
    while True:
        page = await sync_page(client, account, since, **params)
        changes += page["changes"]
        since = page["next_cursor"]
        if not page["has_more"]:
            return changes, since
