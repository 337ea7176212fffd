"""`python -m devstack up`: the whole platform of the Procfile, for `make run`.

Before anything starts, the ports the Procfile's processes bind must be free: a second `make run`
says which port is taken and by which process, instead of a bind error deep in a log. Then, with
PostgreSQL and Redis provided and migrated, it writes the state file (`<data-dir>/stack.json`:
URLs, ports, `TASKPIPE_ENV`) through which the `taskpipe` command finds these servers, runs the
Procfile under honcho, prints a banner with the URLs and credentials once the API is ready, and
exits 0 when Ctrl-C or SIGTERM stopped it (so make reports no error).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType

from sqlalchemy.engine import make_url

from common.config import DEV_FLOWER_PASSWORD, Settings
from devstack.embedded import embedded_postgres_program
from devstack.machine import (
    LOCALHOST,
    exit_status,
    in_terminal_foreground,
    port_holder,
    port_is_free,
)
from devstack.support import REPO_ROOT, DevstackError, Service, log

STATE_FILE_NAME = "stack.json"  # worker/cli.py reads it from <repo>/.taskpipe
READY_TIMEOUT = 120.0
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
_PORT_OPTION = re.compile(r"--port[= ](\d+)")


@dataclass(frozen=True)
class StackPort:
    """A port a process of the stack binds."""

    process: str
    host: str
    port: int


def read_procfile(path: Path) -> dict[str, str]:
    """`name: command` lines, as honcho reads them (comments and blank lines skipped)."""
    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        raise DevstackError(f"cannot read the Procfile {path}: {exc.strerror or exc}") from exc
    processes = {}
    for line in lines:
        name, colon, command = line.partition(":")
        if colon and name.strip() and not name.lstrip().startswith("#"):
            processes[name.strip()] = command.strip()
    return processes


def stack_ports(processes: Mapping[str, str], settings: Settings) -> list[StackPort]:
    """Every `--port N` of the Procfile, and Flower's port, which comes from the settings."""
    ports = []
    for name, command in processes.items():
        if "worker.flower" in command:
            ports.append(StackPort(name, settings.flower_address, settings.flower_port))
        elif match := _PORT_OPTION.search(command):
            ports.append(StackPort(name, LOCALHOST, int(match.group(1))))
    return ports


def refuse_taken_ports(ports: list[StackPort]) -> None:
    taken = [port for port in ports if not port_is_free(port.host, port.port)]
    if not taken:
        return
    lines = [f"  {port.port} ({port.process}): {port_holder(port.port)}" for port in taken]
    raise DevstackError(
        "cannot start, these ports are taken:\n" + "\n".join(lines) + "\nIs another `make run` "
        "running (see `python -m devstack status`)? Stop it with Ctrl-C in its terminal, or stop "
        "what holds the port."
    )


def connect_commands(postgres_url: str, redis_url: str) -> dict[str, str]:
    """psql and redis-cli command lines for the servers (no password: they prompt for one)."""
    database = make_url(postgres_url).set(drivername="postgresql", password=None)
    psql = "psql" if shutil.which("psql") else embedded_postgres_program("psql") or "psql"
    redis = re.sub(r"//[^@/]*@", "//", redis_url)
    return {
        "psql": f"{psql} {database.render_as_string(hide_password=False)}",
        "redis-cli": f"redis-cli -u {redis}",
    }


@dataclass(frozen=True)
class StackState:
    """What a running stack tells other commands (the `taskpipe` CLI): written on start,
    removed on stop, readable only by its owner (URLs may carry passwords)."""

    path: Path
    content: dict[str, object]

    def write(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        staging = self.path.with_suffix(".tmp")
        staging.unlink(missing_ok=True)
        descriptor = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            json.dump(self.content, handle, indent=2)
        staging.replace(self.path)

    def remove(self) -> None:
        """Remove the file if it is still this stack's."""
        try:
            if json.loads(self.path.read_text()).get("pid") == os.getpid():
                self.path.unlink()
        except (OSError, ValueError):
            pass


def stack_environment(
    base: Mapping[str, str], postgres: Service, redis: Service, data_dir: Path
) -> dict[str, str]:
    """The processes' environment: the services found, and development defaults for the rest."""
    env = dict(base)
    env["TASKPIPE_DATABASE_URL"] = postgres.url
    env["TASKPIPE_REDIS_URL"] = redis.url
    # heartbeats and beat's schedule under the data dir, so `make clean` removes them
    env.setdefault("TASKPIPE_HEARTBEAT_DIR", str(data_dir / "run"))
    Path(env["TASKPIPE_HEARTBEAT_DIR"]).mkdir(parents=True, exist_ok=True)
    if sys.stdout.isatty():  # honcho pipes the processes' output: they cannot see the terminal
        env.setdefault("TASKPIPE_LOG_JSON", "false")
    return env


def state_content(
    env: Mapping[str, str],
    ports: list[StackPort],
    postgres: Service,
    redis: Service,
    settings: Settings,
) -> dict[str, object]:
    return {
        "pid": os.getpid(),
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "environment": {
            "TASKPIPE_ENV": env["TASKPIPE_ENV"],
            "TASKPIPE_DATABASE_URL": env["TASKPIPE_DATABASE_URL"],
            "TASKPIPE_REDIS_URL": env["TASKPIPE_REDIS_URL"],
            "TASKPIPE_SMTP_HOST": settings.smtp_host,
            "TASKPIPE_SMTP_PORT": str(settings.smtp_port),
        },
        "ports": {port.process: port.port for port in ports},
        "urls": {
            "api": api_url(ports),
            "flower": f"http://{settings.flower_address}:{settings.flower_port}",
        },
        "services": {postgres.name: postgres.display_url, redis.name: redis.display_url},
        "connect": connect_commands(postgres.url, redis.url),
    }


def banner_lines(
    state: Mapping[str, object], settings: Settings, state_path: Path
) -> Iterator[str]:
    urls = _mapping(state["urls"])
    connect = _mapping(state["connect"])
    services = _mapping(state["services"])
    password = settings.flower_password.get_secret_value()
    shown_password = password if password == DEV_FLOWER_PASSWORD else "TASKPIPE_FLOWER_PASSWORD"
    api = urls["api"]
    yield f"Taskpipe is up (TASKPIPE_ENV={settings.env.value}). Ctrl-C stops everything."
    yield f"  API         {api}   docs {api}/docs, health {api}/health, ready {api}/ready"
    flower = urls["flower"]
    yield f"  Flower      {flower}   user {settings.flower_user}, password {shown_password}"
    mail = f"smtp {settings.smtp_host}:{settings.smtp_port}"
    yield f"  Mail        {mail}   every mail is printed here (lines `mail.1 | ...`)"
    yield f"  PostgreSQL  {services['PostgreSQL']}   {connect['psql']}"
    yield f"  Redis       {services['Redis']}   {connect['redis-cli']}"
    yield f"  CLI         .venv/bin/taskpipe check   (finds these servers through {state_path})"


def _mapping(value: object) -> dict[str, str]:
    assert isinstance(value, dict)
    return {str(key): str(item) for key, item in value.items()}


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/ready", timeout=2) as response:  # noqa: S310 - ours
            return bool(response.status == 200)
    except (OSError, urllib.error.URLError):
        return False


def _announce_when_ready(
    api_url: str, lines: list[str], child: subprocess.Popen[bytes], stopped: threading.Event
) -> None:
    """Print the banner once the API answers /ready (or give up when the stack stops)."""
    deadline = READY_TIMEOUT
    while child.poll() is None and not stopped.is_set() and deadline > 0:
        if _ready(api_url):
            print("\n".join(["", *lines, ""]), flush=True)
            return
        stopped.wait(0.5)
        deadline -= 0.5


def run_stack(command: list[str], env: Mapping[str, str], api_url: str, banner: list[str]) -> int:
    """Run honcho with signals passed on; 0 when a stop signal ended it, else its exit status."""
    signalled = threading.Event()
    finished = threading.Event()
    try:
        child = subprocess.Popen(command, env=dict(env), cwd=REPO_ROOT)  # noqa: S603 - ours
    except OSError as exc:
        raise DevstackError(f"cannot run {command[0]!r}: {exc.strerror or exc}") from exc

    def forward(signum: int, _frame: FrameType | None) -> None:
        signalled.set()
        if signum == signal.SIGINT and in_terminal_foreground():
            return  # Ctrl-C reached honcho from the terminal already
        if child.poll() is None:
            child.send_signal(signum)

    previous = {signum: signal.signal(signum, forward) for signum in STOP_SIGNALS}
    announcer = threading.Thread(
        target=_announce_when_ready, args=(api_url, banner, child, finished), daemon=True
    )
    announcer.start()
    try:
        returncode = child.wait()
    finally:
        finished.set()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    if signalled.is_set():
        log("stopped")
        return 0
    return exit_status(returncode)


def honcho_command(procfile: Path) -> list[str]:
    # `-e /dev/null`: honcho would otherwise load .env over the environment given here, and a
    # .env URL would win over the servers devstack found; each process reads .env itself.
    return [
        *(sys.executable, "-m", "honcho", "start"),
        *("-f", str(procfile), "-d", str(REPO_ROOT), "-e", os.devnull),
    ]


def state_path(data_dir: Path) -> Path:
    return data_dir / STATE_FILE_NAME


def api_url(ports: list[StackPort]) -> str:
    api = next((port for port in ports if port.process == "api"), None)
    if api is None:
        raise DevstackError("the Procfile has no `api` process with a --port")
    return f"http://{api.host}:{api.port}"
