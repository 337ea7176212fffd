"""The Redis ladder: found, `redis-server` from PATH started, or embedded."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit

from devstack.embedded import EmbeddedRedis
from devstack.machine import wait_until
from devstack.support import (
    EMBEDDED_HOST,
    REDIS_HANDSHAKE,
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


def _local_redis_server(endpoint: Endpoint, tried: list[str]) -> str | None:
    """The redis-server on PATH that could serve `endpoint`, or note why there is none."""
    binary = shutil.which("redis-server")
    if binary is None:
        tried.append("no redis-server on PATH")
        return None
    if endpoint.socket_path is not None:
        tried.append("the URL is a unix socket, so no local redis-server was started for it")
        return None
    return binary


def _start_local_redis(endpoint: Endpoint, binary: str, tried: list[str]) -> str | None:
    bind = "::1" if endpoint.host == "::1" else "127.0.0.1"
    command = [
        binary, "--daemonize", "yes", "--bind", bind, "--port", str(endpoint.port),
        "--save", "", "--appendonly", "no",
    ]  # fmt: skip
    log(f"no Redis answers at {endpoint}; starting {binary} on port {endpoint.port}")
    try:
        result = run_program(command)
    except (OSError, subprocess.SubprocessError) as exc:
        tried.append(f"`{binary}` did not start: {exc}")
        return None
    if result.returncode != 0:
        tried.append(f"`{binary}` did not start: {output_of(result)}")
        return None
    if not wait_until(endpoint.reachable):
        tried.append(f"{binary} started but {endpoint} did not answer")
        return None
    return f"{binary} started as a daemon, left running"


def provide_redis(
    url: str,
    embedded: Embedded,
    data_dir: Path,
    stack: contextlib.ExitStack,
    *,
    start: bool = True,
) -> Service:
    """Walk the ladder; with `start=False` (check) say what would happen and start nothing."""
    shown = mask_redis_url(url)
    endpoint = redis_endpoint(url)
    tried: list[str] = []
    if embedded is not Embedded.ALWAYS:
        if endpoint.reachable():
            log(f"using Redis at {shown} (it answers)")
            return Service("Redis", url, shown, Origin.FOUND, f"{endpoint} answers")
        tried.append(f"no Redis answers at {endpoint}")
        if not endpoint.is_local:
            tried.append("the host is not local, so no server was started there")
        elif endpoint.taken():
            tried.append(f"something that is not Redis listens on {endpoint}")
        elif (binary := _local_redis_server(endpoint, tried)) is not None:
            if not start:
                detail = f"run would start {binary} on port {endpoint.port}"
                return Service("Redis", url, shown, Origin.TO_START, detail)
            if (started := _start_local_redis(endpoint, binary, tried)) is not None:
                log(f"using Redis at {shown} ({started})")
                return Service("Redis", url, shown, Origin.STARTED, started)
    if embedded is Embedded.NEVER:
        raise DevstackError(
            f"no Redis for {shown}: {'; '.join(tried)}; embedded servers are off "
            "(--embedded never). Start Redis there, point TASKPIPE_REDIS_URL at one that runs, "
            "or use --embedded auto."
        )
    try:
        server = EmbeddedRedis(data_dir / "redis")
        if start:
            port, how = server.acquire(stack)
        else:
            port, how = server.running_port() or 0, "using the running"
    except DevstackError as exc:
        tried.append(f"embedded Redis: {exc}")
        raise DevstackError(
            f"no Redis for {shown}: {'; '.join(tried)}. "
            "Start Redis and set TASKPIPE_REDIS_URL to it."
        ) from exc
    database = urlsplit(url).path.strip("/") if urlsplit(url).scheme != "unix" else ""
    if not port:  # check, and nothing embedded runs yet
        shown = f"redis://{EMBEDDED_HOST}:<free port>/{database or '0'}"
        detail = f"run would embed {server.binary}, files in {server.root}"
        return Service("Redis", "", shown, Origin.TO_EMBED, detail)
    embedded_url = f"redis://{EMBEDDED_HOST}:{port}/{database or '0'}"
    reason = why_embedded("Redis", endpoint, embedded, tried)
    log(f"{reason}; {how} embedded Redis at {embedded_url} (files in {server.root})")
    return Service(
        "Redis", embedded_url, embedded_url, Origin.EMBEDDED, f"embedded, files in {server.root}"
    )
