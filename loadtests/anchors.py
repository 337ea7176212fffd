"""Anchors for the route benchmark: what the same work costs with nothing of ours around it.

Two routes in a server started the way ours is (uvicorn, uvloop, httptools, one process):

* `GET /anchor/bare`: a bare FastAPI route (a typed return, which FastAPI serialises straight
  to bytes), the floor of the framework (no middleware, no auth, no Redis);
* `GET /anchor/tasks?user_id=...`: a plain Starlette route on raw asyncpg serving the default
  task list page of a user: our own page and count statements (compiled from
  `common.tasks.queries`, categories and subtask counts included), prepared once per
  connection, the rows rendered with orjson. The same SQL work as an uncached list, without
  auth, cache, unit of work or middleware.

`loadtests/bench.py` starts this server beside ours and prints each of our routes as a ratio to
its anchor: ratios hold still on a noisy box where requests per second do not.

    python -m loadtests.anchors --port 8010      # on $TASKPIPE_DATABASE_URL
"""

from __future__ import annotations

import argparse
import enum
import math
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import orjson
import uvicorn
from fastapi import FastAPI
from sqlalchemy import Select
from sqlalchemy.dialects.postgresql import asyncpg as asyncpg_dialect
from starlette.requests import Request
from starlette.responses import Response

from common.tasks.queries import count_statement, list_parameters, page_statement, parse_list_query

LIMIT = 20
_DEFAULT_PAGE = parse_list_query(limit=LIMIT)


class _Compiled:
    """A statement as asyncpg takes it: `$n` SQL and the names of its parameters in order."""

    def __init__(self, statement: Select[Any]) -> None:
        compiled = statement.compile(dialect=asyncpg_dialect.dialect())  # type: ignore[no-untyped-call]
        self.sql = compiled.string
        self.names = list(compiled.positiontup or [])
        self.defaults = {
            name: value.value if isinstance(value, enum.Enum) else value
            for name, value in compiled.params.items()
        }

    def values(self, parameters: dict[str, Any]) -> list[Any]:
        merged = {**self.defaults, **parameters}
        return [merged[name] for name in self.names]


PAGE = _Compiled(page_statement(_DEFAULT_PAGE))
COUNT = _Compiled(count_statement(_DEFAULT_PAGE))


def _document(record: asyncpg.Record) -> dict[str, Any]:
    row = dict(record)
    row["categories"] = orjson.Fragment(row["categories"])  # jsonb arrives as JSON text
    return row


async def list_page(request: Request) -> Response:
    user_id = uuid.UUID(request.query_params["user_id"])
    parameters = list_parameters(user_id, _DEFAULT_PAGE)
    pool: asyncpg.Pool = request.app.state.pool
    async with pool.acquire() as connection:
        rows = await connection.fetch(PAGE.sql, *PAGE.values(parameters))
        total = len(rows)
        if total == LIMIT:
            total = await connection.fetchval(COUNT.sql, *COUNT.values(parameters))
    body = {
        "items": [_document(row) for row in rows],
        "total": total,
        "page": 1,
        "limit": LIMIT,
        "pages": math.ceil(total / LIMIT),
        "next_cursor": None,
    }
    # asyncpg hands out its own UUID type, which orjson leaves to `default`.
    return Response(orjson.dumps(body, default=str), media_type="application/json")


def create_app(database_url: str) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.pool = await asyncpg.create_pool(database_url, min_size=1, max_size=10)
        yield
        await app.state.pool.close()

    app = FastAPI(lifespan=lifespan, openapi_url=None, docs_url=None, redoc_url=None)

    @app.get("/anchor/bare")
    async def bare() -> dict[str, str]:
        return {"status": "ok"}  # serialised by pydantic-core straight to bytes

    app.add_route("/anchor/tasks", list_page)
    return app


def main() -> None:  # pragma: no cover - runs until stopped
    parser = argparse.ArgumentParser(prog="python -m loadtests.anchors", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8010)
    args = parser.parse_args()
    url = os.environ["TASKPIPE_DATABASE_URL"].replace("postgresql+asyncpg://", "postgresql://")
    uvicorn.run(
        create_app(url),
        host=args.host,
        port=args.port,
        loop="uvloop",
        http="httptools",
        log_level="warning",
        access_log=False,
    )


if __name__ == "__main__":  # pragma: no cover
    main()
