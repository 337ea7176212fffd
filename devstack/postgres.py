"""The PostgreSQL ladder (found, local cluster started, embedded) and creating the database."""

from __future__ import annotations

import contextlib
import re
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy.engine import URL

from devstack.embedded import EmbeddedPostgres
from devstack.machine import wait_until
from devstack.support import (
    EMBEDDED_HOST,
    POSTGRES_HANDSHAKE,
    START_TIMEOUT,
    DevstackError,
    Embedded,
    Endpoint,
    Origin,
    Service,
    log,
    output_of,
    run_program,
    why_embedded,
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


def _local_cluster(endpoint: Endpoint, tried: list[str]) -> tuple[str, str, str] | None:
    """pg_ctlcluster and the machine's cluster (version, name) for `endpoint`, or note why not."""
    pg_ctlcluster = shutil.which("pg_ctlcluster")
    if pg_ctlcluster is None:
        tried.append("no pg_ctlcluster on this machine")
        return None
    clusters = _clusters_on_port(endpoint.port)
    if not clusters:
        tried.append(f"no cluster in /etc/postgresql is configured for port {endpoint.port}")
        return None
    version, name = clusters[0]
    return pg_ctlcluster, version, name


def _start_local_cluster(
    endpoint: Endpoint, cluster: tuple[str, str, str], tried: list[str]
) -> str | None:
    """Start the machine's cluster for `endpoint`; return what was started, or note why not."""
    pg_ctlcluster, version, name = cluster
    command = [pg_ctlcluster, "--skip-systemctl-redirect", version, name, "start"]
    log(f"no PostgreSQL answers at {endpoint}; starting the local cluster: {' '.join(command)}")
    try:
        result = run_program(command, timeout=START_TIMEOUT * 2)
    except (OSError, subprocess.SubprocessError) as exc:
        tried.append(f"`{' '.join(command)}` failed: {exc}")
        return None
    if result.returncode != 0:
        tried.append(f"`{' '.join(command)}` failed: {output_of(result)}")
        return None
    if not wait_until(endpoint.reachable):
        tried.append(f"cluster {version}/{name} started but {endpoint} did not answer")
        return None
    return f"cluster {version}/{name} started with pg_ctlcluster, left running"


def provide_postgres(
    url: URL,
    embedded: Embedded,
    data_dir: Path,
    stack: contextlib.ExitStack,
    *,
    start: bool = True,
) -> Service:
    """Walk the ladder; with `start=False` (check) say what would happen and start nothing."""
    shown = url.render_as_string(hide_password=True)
    endpoint = postgres_endpoint(url)
    tried: list[str] = []
    if embedded is not Embedded.ALWAYS:
        if endpoint.reachable():
            log(f"using PostgreSQL at {shown} (it answers)")
            return Service("PostgreSQL", _render(url), shown, Origin.FOUND, f"{endpoint} answers")
        tried.append(f"no PostgreSQL answers at {endpoint}")
        if not endpoint.is_local:
            tried.append("the host is not local, so no server was started there")
        elif endpoint.taken():
            tried.append(f"something that is not PostgreSQL listens on {endpoint}")
        elif (cluster := _local_cluster(endpoint, tried)) is not None:
            if not start:
                _, version, name = cluster
                detail = f"run would start cluster {version}/{name} with pg_ctlcluster"
                return Service("PostgreSQL", _render(url), shown, Origin.TO_START, detail)
            if (started := _start_local_cluster(endpoint, cluster, tried)) is not None:
                log(f"using PostgreSQL at {shown} ({started})")
                return Service("PostgreSQL", _render(url), shown, Origin.STARTED, started)
    if embedded is Embedded.NEVER:
        raise DevstackError(
            f"no PostgreSQL for {shown}: {'; '.join(tried)}; embedded servers are off "
            "(--embedded never). Start PostgreSQL there, point TASKPIPE_DATABASE_URL at one that "
            "runs, or use --embedded auto."
        )
    try:
        server = EmbeddedPostgres(data_dir / "postgres")
        if start:
            port, how = server.acquire(stack)
        else:
            port, how = server.running_port() or 0, "using the running"
    except DevstackError as exc:
        tried.append(f"embedded PostgreSQL: {exc}")
        raise DevstackError(
            f"no PostgreSQL for {shown}: {'; '.join(tried)}. Start PostgreSQL and set "
            "TASKPIPE_DATABASE_URL to it."
        ) from exc
    if not port:  # check, and nothing embedded runs yet
        shown = f"{url.drivername}://postgres@{EMBEDDED_HOST}:<free port>/{url.database}"
        detail = f"run would embed PostgreSQL, data in {server.pgdata}"
        return Service("PostgreSQL", "", shown, Origin.TO_EMBED, detail)
    embedded_url = url.set(
        host=EMBEDDED_HOST, port=port, username="postgres", password=None, query={}
    )
    embedded_shown = embedded_url.render_as_string(hide_password=True)
    reason = why_embedded("PostgreSQL", endpoint, embedded, tried)
    log(f"{reason}; {how} embedded PostgreSQL at {embedded_shown} (data in {server.pgdata})")
    return Service(
        "PostgreSQL",
        _render(embedded_url),
        embedded_shown,
        Origin.EMBEDDED,
        f"embedded, data in {server.pgdata}",
    )


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
