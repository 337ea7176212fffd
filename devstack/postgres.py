"""The PostgreSQL ladder (found, local cluster started, embedded) and creating the database."""

from __future__ import annotations

import contextlib
import re
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy.engine import URL

from devstack.embedded import EmbeddedPostgres
from devstack.ladder import LocalServer, Rungs, climb
from devstack.support import (
    EMBEDDED_HOST,
    POSTGRES_HANDSHAKE,
    START_TIMEOUT,
    DevstackError,
    Embedded,
    Endpoint,
    Service,
    log,
    start_local_server,
)


def postgres_endpoint(url: URL) -> Endpoint:
    port = url.port or 5432
    query_host = url.query.get("host")
    if isinstance(query_host, str) and query_host.startswith("/"):
        socket_path = f"{query_host}/.s.PGSQL.{port}"
        return Endpoint("localhost", port, POSTGRES_HANDSHAKE, socket_path=socket_path)
    return Endpoint(url.host or "localhost", port, POSTGRES_HANDSHAKE)


def _clusters_on_port(port: int) -> list[tuple[str, str]]:
    """Debian/Ubuntu clusters (`/etc/postgresql/<version>/<name>`) configured for `port`."""
    clusters = []
    for conf in sorted(Path("/etc/postgresql").glob("*/*/postgresql.conf")):
        try:
            match = re.search(r"^\s*port\s*=\s*(\d+)", conf.read_text(), re.MULTILINE)
        except OSError:
            continue
        if (int(match.group(1)) if match else 5432) == port:
            clusters.append((conf.parent.parent.name, conf.parent.name))
    return clusters


def _local_cluster(endpoint: Endpoint, tried: list[str]) -> LocalServer | None:
    """The machine's cluster configured for `endpoint` (`pg_ctlcluster`), or note why none."""
    pg_ctlcluster = shutil.which("pg_ctlcluster")
    if pg_ctlcluster is None:
        tried.append("no pg_ctlcluster on this machine")
        return None
    clusters = _clusters_on_port(endpoint.port)
    if not clusters:
        tried.append(f"no cluster in /etc/postgresql is configured for port {endpoint.port}")
        return None
    version, name = clusters[0]
    command = [pg_ctlcluster, "--skip-systemctl-redirect", version, name, "start"]

    def start(tried: list[str]) -> str | None:
        log(f"no PostgreSQL answers at {endpoint}; starting the local cluster: {' '.join(command)}")
        if not start_local_server(command, endpoint, tried, timeout=START_TIMEOUT * 2):
            return None
        return f"cluster {version}/{name} started with pg_ctlcluster, left running"

    return LocalServer(f"cluster {version}/{name} with pg_ctlcluster", start)


def provide_postgres(
    url: URL,
    embedded: Embedded,
    data_dir: Path,
    stack: contextlib.ExitStack,
    *,
    start: bool = True,
) -> Service:
    """Walk the ladder; with `start=False` (check) say what would happen and start nothing."""
    endpoint = postgres_endpoint(url)

    def embedded_url(port: int | None) -> tuple[str, str]:
        if port is None:
            return "", f"{url.drivername}://postgres@{EMBEDDED_HOST}:<free port>/{url.database}"
        found = url.set(host=EMBEDDED_HOST, port=port, username="postgres", password=None, query={})
        return _render(found), found.render_as_string(hide_password=True)

    rungs = Rungs(
        name="PostgreSQL",
        variable="TASKPIPE_DATABASE_URL",
        url=_render(url),
        shown=url.render_as_string(hide_password=True),
        endpoint=endpoint,
        local_server=lambda tried: _local_cluster(endpoint, tried),
        embedded_server=lambda: EmbeddedPostgres(data_dir / "postgres"),
        embedded_url=embedded_url,
    )
    return climb(rungs, embedded, stack, start=start)


def _render(url: URL) -> str:
    return url.render_as_string(hide_password=False)


def _asyncpg_options(url: URL) -> dict[str, Any]:
    endpoint = postgres_endpoint(url)
    host = endpoint.host if endpoint.socket_path is None else str(Path(endpoint.socket_path).parent)
    return {
        "user": url.username,
        "password": url.password,
        "host": host,
        "port": endpoint.port,
        "database": url.database,
        "timeout": 10,
    }


DATABASE_EXISTS = "SELECT 1 FROM pg_database WHERE datname = $1"


def quote_identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@contextlib.asynccontextmanager
async def _maintenance_connection(url: URL) -> AsyncIterator[Any]:
    """A connection to the `postgres` database (or `template1`) of the server in `url`."""
    last_error: Exception | None = None
    for database in ("postgres", "template1"):
        try:
            connection = await asyncpg.connect(**_asyncpg_options(url.set(database=database)))
        except asyncpg.InvalidCatalogNameError as exc:
            last_error = exc
            continue
        except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
            last_error = exc
            break
        try:
            yield connection
        finally:
            await connection.close()
        return
    raise DevstackError(
        f"cannot connect to PostgreSQL at {url.render_as_string(hide_password=True)}: "
        f"{last_error!r}; check the user and password in TASKPIPE_DATABASE_URL"
    )


async def database_exists(url: URL) -> bool:
    async with _maintenance_connection(url) as connection:
        found = await connection.fetchval(DATABASE_EXISTS, url.database)
        return found is not None


async def ensure_database(url: URL) -> bool:
    """Create the database named in `url` unless it exists; True when this call created it."""
    name = url.database
    if not name:
        raise DevstackError(f"no database name in {url.render_as_string(hide_password=True)}")
    async with _maintenance_connection(url) as connection:
        if await connection.fetchval(DATABASE_EXISTS, name):
            return False
        try:
            # Identifiers cannot be bind parameters; quote_identifier doubles any embedded quote.
            await connection.execute("CREATE DATABASE " + quote_identifier(name))
        except asyncpg.DuplicateDatabaseError:  # another devstack won the race
            return False
        return True
