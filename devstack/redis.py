"""The Redis ladder: found, `redis-server` from PATH started, or embedded."""

from __future__ import annotations

import contextlib
import shutil
from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit

from devstack.embedded import EmbeddedRedis
from devstack.ladder import LocalServer, Rungs, climb
from devstack.support import (
    EMBEDDED_HOST,
    REDIS_HANDSHAKE,
    Embedded,
    Endpoint,
    Service,
    log,
    start_local_server,
)


def redis_endpoint(url: str) -> Endpoint:
    parts = urlsplit(url)
    if parts.scheme == "unix":
        return Endpoint("localhost", 0, REDIS_HANDSHAKE, socket_path=unquote(parts.path))
    return Endpoint(parts.hostname or "localhost", parts.port or 6379, REDIS_HANDSHAKE)


def mask_redis_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def _local_redis_server(endpoint: Endpoint, tried: list[str]) -> LocalServer | None:
    """The redis-server on PATH that could serve `endpoint`, or note why there is none."""
    binary = shutil.which("redis-server")
    if binary is None:
        tried.append("no redis-server on PATH")
        return None
    if endpoint.socket_path is not None:
        tried.append("the URL is a unix socket, so no local redis-server was started for it")
        return None
    bind = "::1" if endpoint.host == "::1" else "127.0.0.1"
    command = [
        binary, "--daemonize", "yes", "--bind", bind, "--port", str(endpoint.port),
        "--save", "", "--appendonly", "no",
    ]  # fmt: skip

    def start(tried: list[str]) -> str | None:
        log(f"no Redis answers at {endpoint}; starting {binary} on port {endpoint.port}")
        if not start_local_server(command, endpoint, tried):
            return None
        return f"{binary} started as a daemon, left running"

    return LocalServer(f"{binary} on port {endpoint.port}", start)


def provide_redis(
    url: str,
    embedded: Embedded,
    data_dir: Path,
    stack: contextlib.ExitStack,
    *,
    start: bool = True,
) -> Service:
    """Walk the ladder; with `start=False` (check) say what would happen and start nothing."""
    endpoint = redis_endpoint(url)
    database = urlsplit(url).path.strip("/") if urlsplit(url).scheme != "unix" else ""

    def embedded_url(port: int | None) -> tuple[str, str]:
        found = f"redis://{EMBEDDED_HOST}:{port or '<free port>'}/{database or '0'}"
        return ("" if port is None else found), found

    rungs = Rungs(
        name="Redis",
        variable="TASKPIPE_REDIS_URL",
        url=url,
        shown=mask_redis_url(url),
        endpoint=endpoint,
        local_server=lambda tried: _local_redis_server(endpoint, tried),
        embedded_server=lambda: EmbeddedRedis(data_dir / "redis"),
        embedded_url=embedded_url,
    )
    return climb(rungs, embedded, stack, start=start)
