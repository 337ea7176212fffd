"""devstack against real servers: the machine's own, and embedded ones it starts and stops."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from common.config import get_settings
from devstack.embedded import EmbeddedPostgres, EmbeddedRedis
from devstack.machine import free_port, pid_alive, read_pid
from devstack.postgres import (
    database_exists,
    ensure_database,
    postgres_endpoint,
    quote_identifier,
)
from devstack.redis import redis_endpoint
from devstack.support import POSTGRES_HANDSHAKE, REDIS_HANDSHAKE, REPO_ROOT, Endpoint

DEVSTACK = [sys.executable, "-m", "devstack"]

# Runs under devstack: the real app with its real lifespan, asked through ASGI whether it is ready,
# plus a look at a migrated table. Results go to a file because the app logs to stdout.
READY_CHILD = textwrap.dedent(
    """
    import asyncio, json, os, subprocess, sys

    import asyncpg
    import httpx
    from sqlalchemy.engine import make_url


    async def main() -> None:
        from api.main import app

        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://devstack") as client:
                response = await client.get("/ready")
        url = make_url(os.environ["TASKPIPE_DATABASE_URL"])
        connection = await asyncpg.connect(
            host=url.host, port=url.port, user=url.username, database=url.database
        )
        try:
            users = await connection.fetchval("SELECT count(*) FROM users")
        finally:
            await connection.close()
        check = subprocess.run(
            [sys.executable, "-m", "devstack", "check", "--embedded", "always",
             "--data-dir", sys.argv[2], "--database", url.database],
            capture_output=True, text=True, timeout=60,
        )
        result = {
            "check": check.stdout,
            "env": os.environ.get("TASKPIPE_ENV"),
            "status": response.status_code,
            "body": response.json(),
            "users": users,
            "database_url": os.environ["TASKPIPE_DATABASE_URL"],
            "redis_url": os.environ["TASKPIPE_REDIS_URL"],
        }
        with open(sys.argv[1], "w") as out:
            json.dump(result, out)
        sys.exit(0 if response.status_code == 200 else 1)


    asyncio.run(main())
    """
)

# Waits to be stopped, records which signal did it and exits with a code devstack must pass on.
SIGNAL_CHILD = textwrap.dedent(
    """
    import pathlib, signal, sys, time

    def stop(signum, frame):
        pathlib.Path(sys.argv[1]).write_text(signal.Signals(signum).name)
        sys.exit(7)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print("ready", flush=True)
    time.sleep(60)
    """
)


def clean_env(**overrides: str) -> dict[str, str]:
    """The test process's environment without TASKPIPE_* URLs a conftest may have set."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"TASKPIPE_BROKER_URL", "TASKPIPE_RESULT_BACKEND_URL"}
    }
    env.update(overrides)
    return env


def accepts_connections(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture
def data_dir() -> Iterator[Path]:
    """A data dir outside pytest's base temp dir.

    Run as root, the embedded PostgreSQL runs as another user that must traverse every ancestor
    of its data dir; every pytest start (another session, an xdist run) chmods
    /tmp/pytest-of-<user> back to 0700, which would pull that away in the middle of a start.
    """
    path = Path(tempfile.mkdtemp(prefix="taskpipe-devstack-test-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_embedded_fallback_serves_the_migrated_app_and_stops_afterwards(
    tmp_path: Path, data_dir: Path
) -> None:
    child = tmp_path / "ready_child.py"
    child.write_text(READY_CHILD)
    result_file = tmp_path / "result.json"

    done = subprocess.run(
        [
            *DEVSTACK, "run", "--embedded", "always", "--data-dir", str(data_dir),
            "--database", "devstack_check", "--migrate",
            "--", sys.executable, str(child), str(result_file), str(data_dir),
        ],
        cwd=REPO_ROOT,
        env=clean_env(TASKPIPE_ENV="test"),
        capture_output=True,
        text=True,
        timeout=90,
    )  # fmt: skip

    assert done.returncode == 0, done.stderr
    assert "started embedded PostgreSQL at postgresql+asyncpg://postgres@127.0.0.1:" in done.stderr
    assert "started embedded Redis at redis://127.0.0.1:" in done.stderr
    result = json.loads(result_file.read_text())
    assert result["status"] == 200
    assert result["body"]["status"] == "ready"
    assert result["users"] == 0
    assert result["env"] == "test"  # set by the caller: devstack keeps it
    database_url = make_url(result["database_url"])
    redis_url = urlsplit(result["redis_url"])
    assert database_url.database == "devstack_check"
    assert (database_url.host, redis_url.hostname) == ("127.0.0.1", "127.0.0.1")
    postgres_port, redis_port = database_url.port, redis_url.port
    assert postgres_port is not None
    assert redis_port is not None
    assert postgres_port != 5432  # the machine's own servers keep their ports
    assert redis_port != 6379
    # While they run, check reports the embedded servers it would join, and starts nothing.
    postgres_line, database_line, redis_line = result["check"].splitlines()
    assert postgres_line.split()[:3] == [
        "PostgreSQL",
        "embedded",
        f"postgresql+asyncpg://postgres@127.0.0.1:{postgres_port}/devstack_check",
    ]
    assert "database devstack_check: exists" in database_line
    assert redis_line.split()[:3] == ["Redis", "embedded", result["redis_url"]]

    assert not accepts_connections("127.0.0.1", postgres_port), done.stderr
    assert not accepts_connections("127.0.0.1", redis_port), done.stderr
    assert not (EmbeddedPostgres(data_dir / "postgres").pgdata / "postmaster.pid").exists()
    redis_pid = read_pid(EmbeddedRedis(data_dir / "redis").pidfile)
    assert redis_pid is None or not pid_alive(redis_pid)
    assert "stopped embedded PostgreSQL" in done.stderr
    assert "stopped embedded Redis" in done.stderr


def test_check_starts_nothing_and_says_what_run_would_do(data_dir: Path) -> None:
    # Nothing listens on these ports and no cluster in /etc/postgresql is configured for the
    # PostgreSQL one, so run would embed PostgreSQL, and start Redis from PATH if the machine
    # has redis-server there. check must only say so.
    postgres_port, redis_port = free_port(), free_port()
    done = subprocess.run(
        [*DEVSTACK, "check", "--data-dir", str(data_dir)],
        cwd=REPO_ROOT,
        env=clean_env(
            TASKPIPE_DATABASE_URL=f"postgresql+asyncpg://postgres@127.0.0.1:{postgres_port}/x",
            TASKPIPE_REDIS_URL=f"redis://127.0.0.1:{redis_port}/3",
        ),
        capture_output=True,
        text=True,
        timeout=90,
    )

    assert done.returncode == 0, done.stderr
    postgres_line, database_line, redis_line = done.stdout.splitlines()
    assert postgres_line.split()[:3] == ["PostgreSQL", "to", "embed"]
    assert "database x: created by run" in database_line
    if shutil.which("redis-server") is not None:
        assert redis_line.split()[:4] == [
            "Redis",
            "to",
            "start",
            f"redis://127.0.0.1:{redis_port}/3",
        ]
    else:
        assert redis_line.split()[:3] == ["Redis", "to", "embed"]
    assert not accepts_connections("127.0.0.1", postgres_port)
    assert not accepts_connections("127.0.0.1", redis_port)
    assert list(data_dir.iterdir()) == []
    assert "started" not in done.stderr
    assert "stopped" not in done.stderr


def test_run_makes_its_command_a_development_process_unless_told_otherwise() -> None:
    show = [sys.executable, "-c", "import os; print(os.environ['TASKPIPE_ENV'])"]
    for given, expected in ((None, "development"), ("test", "test")):
        env = clean_env()
        env.pop("TASKPIPE_ENV", None)
        if given:
            env["TASKPIPE_ENV"] = given
        done = subprocess.run(
            [*DEVSTACK, "run", "--embedded", "never", "--database", "postgres", "--", *show],
            cwd=REPO_ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == expected


def test_up_names_the_process_holding_a_port_and_starts_nothing(tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as holder:
        port = holder.getsockname()[1]
        procfile = tmp_path / "Procfile"
        procfile.write_text(f"api: {sys.executable} -m api.server --port {port}\n")
        done = subprocess.run(
            [*DEVSTACK, "up", "--procfile", str(procfile), "--data-dir", str(tmp_path / "data")],
            cwd=REPO_ROOT,
            env=clean_env(),
            capture_output=True,
            text=True,
            timeout=60,
        )

    assert done.returncode == 1
    assert "devstack: cannot start, these ports are taken:" in done.stderr
    assert f"  {port} (api): pid {os.getpid()} (" in done.stderr
    assert "another `make run`" in done.stderr
    assert not (tmp_path / "data").exists()
    assert "using PostgreSQL" not in done.stderr  # refused before looking for services


def test_check_finds_the_services_the_settings_point_at() -> None:
    done = subprocess.run(
        [*DEVSTACK, "check", "--embedded", "never", "--database", "postgres"],
        cwd=REPO_ROOT,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split()[:2] == ["PostgreSQL", "found"]
    assert "database postgres: exists" in lines[1]
    assert lines[2].split()[:2] == ["Redis", "found"]


def test_a_port_that_accepts_but_speaks_another_protocol_is_no_server() -> None:
    # Sandboxes and corporate networks have proxies that accept any connection; a bare
    # connect would take them for PostgreSQL or Redis.
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]

        def answer_like_an_http_proxy() -> None:
            for _ in range(2):
                connection, _ = server.accept()
                with connection:
                    connection.recv(64)
                    connection.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n")

        proxy = threading.Thread(target=answer_like_an_http_proxy, daemon=True)
        proxy.start()
        assert not Endpoint("127.0.0.1", port, POSTGRES_HANDSHAKE).reachable()
        assert not Endpoint("127.0.0.1", port, REDIS_HANDSHAKE).reachable()
        proxy.join(timeout=5)

    settings = get_settings()
    assert postgres_endpoint(make_url(settings.database_url)).reachable()
    assert redis_endpoint(settings.redis_url).reachable()


async def test_creating_the_database_is_idempotent_and_quotes_its_name() -> None:
    name = f'devstack "Idempotent" {uuid.uuid4().hex[:8]}'
    url = make_url(get_settings().database_url).set(database=name)
    try:
        assert await ensure_database(url) is True
        assert await ensure_database(url) is False
        assert await database_exists(url) is True
    finally:
        maintenance = url.set(database="postgres")
        connection = await asyncpg.connect(
            user=maintenance.username,
            password=maintenance.password,
            host=maintenance.host,
            port=maintenance.port,
            database="postgres",
        )
        try:
            await connection.execute(f"DROP DATABASE IF EXISTS {quote_identifier(name)}")
        finally:
            await connection.close()
    assert await database_exists(url) is False


def test_nothing_to_be_had_fails_with_one_clear_message(tmp_path: Path) -> None:
    marker = tmp_path / "child-ran"
    done = subprocess.run(
        [
            *DEVSTACK, "run", "--embedded", "never", "--data-dir", str(tmp_path),
            "--", sys.executable, "-c", f"open({str(marker)!r}, 'w')",
        ],
        cwd=REPO_ROOT,
        # 192.0.2.1 is TEST-NET-1: never routed, and not local, so nothing may be started for it.
        env=clean_env(TASKPIPE_DATABASE_URL="postgresql+asyncpg://app@192.0.2.1:5432/taskpipe"),
        capture_output=True,
        text=True,
        timeout=60,
    )  # fmt: skip

    assert done.returncode == 1
    assert not marker.exists()
    assert not (tmp_path / "postgres").exists()
    message = done.stderr.strip().splitlines()[-1]
    assert message.startswith("devstack: no PostgreSQL for postgresql+asyncpg://app@192.0.2.1")
    assert "no PostgreSQL answers at 192.0.2.1:5432" in message
    assert "not local" in message
    assert "--embedded never" in message
    assert "TASKPIPE_DATABASE_URL" in message


def test_signals_reach_the_command_and_its_exit_code_comes_back(tmp_path: Path) -> None:
    child = tmp_path / "signal_child.py"
    child.write_text(SIGNAL_CHILD)
    for signum in (signal.SIGTERM, signal.SIGINT):
        marker = tmp_path / f"got-{signum.name}"
        # A session of its own: no terminal, so devstack itself must pass SIGINT on.
        devstack = subprocess.Popen(
            [
                *DEVSTACK, "run", "--embedded", "never", "--database", "postgres",
                "--", sys.executable, str(child), str(marker),
            ],
            cwd=REPO_ROOT,
            env=clean_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )  # fmt: skip
        try:
            assert devstack.stdout is not None
            assert devstack.stdout.readline().strip() == "ready"
            devstack.send_signal(signum)
            _, stderr = devstack.communicate(timeout=30)
        finally:
            if devstack.poll() is None:
                devstack.kill()
        assert devstack.returncode == 7, stderr
        assert marker.read_text() == signum.name
