"""Run the load test end to end: services, platform, seed, Locust, report. `make loadtest`.

    python -m loadtests.run --users 1000 --spawn-rate 10 --duration 3m
    python -m loadtests.run --ladder 250,500,1000,1500,2000 --spawn-rate 10 --duration 2m
    python -m loadtests.run --shape spike --users 500

1. PostgreSQL and Redis from devstack (`python -m common.devstack run`, which this command wraps
   itself in: found, started or embedded), a fresh database (`taskpipe_load`, dropped and
   re-created, then migrated) and two Redis databases claimed the way the test suite claims
   them (cache and limits, and the Celery broker), flushed before each step.
2. The platform in production mode: `TASKPIPE_ENV=production` with a JWT secret and a Flower
   password generated for the run, bcrypt cost 12, INFO logs; uvicorn with several workers,
   uvloop and httptools; a Celery worker and beat; a mail catcher. Logs go to `logs/`.
3. `loadtests.seed` for the accounts, tasks and sessions, then Locust headless. `--duration` is
   the steady state *after* the ramp: Locust runs users/spawn-rate + 10 s + duration.
4. Everything it started is stopped (also on Ctrl-C), and `loadtests/reports/<timestamp>/`
   holds Locust's HTML report and CSVs, the per-request log, CPU samples and `summary.json`.

Exit status: 0 when the steady-state p95 is under 200 ms and no request failed, 1 when not,
2 when the run itself could not be done. A ladder exits 0 when every step ran, and says which
user counts held the target.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import fcntl
import json
import math
import os
import platform
import re
import secrets
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import psutil
import redis
from sqlalchemy import text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import create_async_engine

from loadtests import env
from loadtests.plans import SHAPES, plan_for
from loadtests.summary import P95_TARGET_MS, SETTLE_SECONDS, summarize

ROOT = Path(__file__).resolve().parent.parent
REPORTS = ROOT / "loadtests" / "reports"
LOCUSTFILE = ROOT / "loadtests" / "locustfile.py"
LOCK_FILE = ROOT / ".taskpipe" / "loadtest.lock"
PY = sys.executable

DEFAULT_USERS = 1000
DEFAULT_SPAWN_RATE = 10.0
"""Users arriving per second. 1000 concurrent users with sessions of ~20 minutes means about one
new session a second; 10/s is a morning peak ten times that, and 1000 users are in within 100 s.
A spawn rate of 100+ would be every user opening the app in the same ten seconds (a push to all,
the end of an outage): that is the spike shape's job, not the capacity figure's."""
DEFAULT_HOLD = "3m"
DEFAULT_TASKS_PER_USER = 100
DEFAULT_DATABASE = "taskpipe_load"
BCRYPT_ROUNDS = 12
LOGIN_RATE_LIMIT = 1_000_000
"""Every simulated user comes from 127.0.0.1, which the per-IP login limit (20/min) would refuse;
real users come from many addresses. The limiter still runs (one Lua call a login); lockout
(per account) keeps its production setting."""
KEEP_ALIVE_SECONDS = 75
"""uvicorn's default keep-alive (5 s) would close idle connections while simulated users think
(1-5 s), and a POST or PATCH sent on a connection the server is closing cannot be retried safely.
In production clients reach uvicorn through the ingress, which holds upstream connections (nginx:
75 s); here Locust talks to uvicorn directly, so the run gives uvicorn the ingress's keep-alive."""
PLATFORM_NICE = 5
"""Locust shares the machine with what it measures. Under a CPU-bound platform the kernel would
make Locust wait its turn behind the uvicorn workers, and that wait, which no remote client
sees, would count as response time. So the processes under test (API, worker, beat, mail) run
at nice +5: Locust, PostgreSQL and Redis are served first. The platform still gets every cycle
Locust does not use. `--platform-nice 0` measures without this (see README, Performance)."""
READY_TIMEOUT = 60.0
STOP_TIMEOUT = 30.0
REDIS_CLAIM_KEY = "taskpipe:test-run"  # the key tests/conftest.py claims Redis databases with
UNDER_DEVSTACK = "TASKPIPE_LOADTEST_UNDER_DEVSTACK"
SECRET_SETTINGS = (
    "TASKPIPE_JWT_SECRET",
    "TASKPIPE_FLOWER_PASSWORD",
    "TASKPIPE_SMTP_PASSWORD",
    "TASKPIPE_METRICS_TOKEN",
)


class RunError(Exception):
    """The run could not be done (not: the service was too slow)."""


def log(message: str) -> None:
    print(f"loadtest: {message}", file=sys.stderr, flush=True)


# --- options --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Options:
    users: int
    spawn_rate: float
    hold: int
    ladder: list[int]
    shape: str | None
    workers: int
    locust_processes: int
    tasks_per_user: int
    database: str
    bcrypt_rounds: int
    profile: str | None
    p95_target_ms: float
    report_root: Path
    tags: str = ""
    exclude_tags: str = ""
    platform_nice: int = 0
    argv: list[str] = field(default_factory=list)

    @property
    def steps(self) -> list[int]:
        return self.ladder or [self.users]

    def peak_users(self, users: int) -> int:
        if self.shape:
            return max(stage.users for stage in plan_for(self.shape, users, self.spawn_rate))
        return users


def parse_args(argv: Sequence[str]) -> Options:
    parser = argparse.ArgumentParser(
        prog="python -m loadtests.run",
        description="Run the Taskpipe load test end to end and keep its report.",
    )
    parser.add_argument("--users", type=int, default=DEFAULT_USERS, help="default 1000")
    parser.add_argument(
        "--spawn-rate", type=float, default=DEFAULT_SPAWN_RATE, help="users/s (default 10)"
    )
    parser.add_argument(
        "--duration",
        default=DEFAULT_HOLD,
        help="steady state after the ramp, e.g. 90s, 3m (default 3m)",
    )
    parser.add_argument(
        "--ladder", default="", help="comma-separated user counts, one run each, plus a plot"
    )
    parser.add_argument("--shape", choices=SHAPES, help="a spike or soak instead of a plain run")
    parser.add_argument(
        "--workers", type=int, default=os.cpu_count() or 2, help="uvicorn workers (default: CPUs)"
    )
    parser.add_argument(
        "--locust-processes", type=int, default=1, help="Locust processes (default 1)"
    )
    parser.add_argument("--tasks-per-user", type=int, default=DEFAULT_TASKS_PER_USER)
    parser.add_argument("--database", default=DEFAULT_DATABASE, help="default taskpipe_load")
    parser.add_argument("--bcrypt-rounds", type=int, default=BCRYPT_ROUNDS, help="default 12")
    parser.add_argument(
        "--profile",
        nargs="?",
        const="flamegraph",
        choices=("flamegraph", "speedscope", "raw"),
        help="py-spy profile of each uvicorn worker over the steady state (default format: "
        "flamegraph SVG; raw = collapsed stacks)",
    )
    parser.add_argument("--p95-target-ms", type=float, default=P95_TARGET_MS)
    parser.add_argument(
        "--platform-nice",
        type=int,
        default=PLATFORM_NICE,
        help=f"nice value of the processes under test (default {PLATFORM_NICE}; 0: no change)",
    )
    parser.add_argument("--tags", default="", help="only these actions: read, write, auth")
    parser.add_argument("--exclude-tags", default="", help="all actions but these")
    parser.add_argument("--report-dir", type=Path, default=REPORTS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    try:
        hold = env.parse_duration(args.duration)
        ladder = [int(part) for part in args.ladder.split(",") if part.strip()]
    except ValueError as exc:
        parser.error(str(exc))
    if min([args.users, *ladder]) < 1 or args.spawn_rate <= 0 or args.workers < 1:
        parser.error("users, spawn rate and workers must be positive")
    if "load" not in args.database:
        parser.error("the database is dropped and re-created: its name must contain 'load'")
    return Options(
        users=args.users,
        spawn_rate=args.spawn_rate,
        hold=hold,
        ladder=sorted(set(ladder)),
        shape=args.shape,
        workers=args.workers,
        locust_processes=args.locust_processes,
        tasks_per_user=args.tasks_per_user,
        database=args.database,
        bcrypt_rounds=args.bcrypt_rounds,
        profile=args.profile,
        p95_target_ms=args.p95_target_ms,
        report_root=args.report_dir,
        tags=args.tags,
        platform_nice=args.platform_nice,
        exclude_tags=args.exclude_tags,
        argv=list(argv),
    )


# --- services ----------------------------------------------------------------------------------


@contextlib.contextmanager
def exclusive_lock() -> Iterator[None]:
    """One load test at a time on a machine: two would measure each other."""
    LOCK_FILE.parent.mkdir(parents=True, exist_ok=True)
    with LOCK_FILE.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise RunError(f"another load test holds {LOCK_FILE}") from exc
        yield


async def _recreate_database(url: URL) -> None:
    """Drop and re-create the run's database, so every run starts from the same state."""
    name = url.database or ""
    if not re.fullmatch(r"[a-z0-9_]*load[a-z0-9_]*", name):
        raise RunError(f"refusing to drop database {name!r}: not a load-test database name")
    engine = create_async_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as connection:
            await connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            await connection.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        await engine.dispose()


def migrate(environ: dict[str, str], logs: Path) -> None:
    logs.mkdir(parents=True, exist_ok=True)
    with (logs / "migrate.log").open("ab") as handle:
        result = subprocess.run(
            [PY, "-m", "alembic", "upgrade", "head"],
            cwd=ROOT,
            env=environ,
            stdout=handle,
            stderr=subprocess.STDOUT,
            check=False,
        )
    if result.returncode != 0:
        raise RunError(f"alembic upgrade head failed; see {logs / 'migrate.log'}")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class RedisClaim:
    """Redis databases claimed like the tests claim theirs, so a test run never flushes ours."""

    def __init__(self, base_url: str, count: int, ttl: int) -> None:
        self.base_url = base_url.rsplit("/", 1)[0]
        self.ttl = ttl
        self.indexes: list[int] = []
        self.owner = f"loadtest-{os.getpid()}"
        for index in range(15, 0, -1):  # from the top: tests claim from the bottom
            if len(self.indexes) == count:
                break
            with self._client(index) as client:
                if client.set(REDIS_CLAIM_KEY, self.owner, nx=True, ex=ttl):
                    self.indexes.append(index)
        if len(self.indexes) < count:
            self.release()
            raise RunError("no free Redis database among 1-15 (test runs claim them too)")

    def _client(self, index: int) -> redis.Redis:
        return redis.Redis.from_url(f"{self.base_url}/{index}")

    def url(self, position: int) -> str:
        return f"{self.base_url}/{self.indexes[position]}"

    def flush(self) -> None:
        for index in self.indexes:
            with self._client(index) as client:
                pipe = client.pipeline(transaction=True)
                pipe.flushdb()
                pipe.set(REDIS_CLAIM_KEY, self.owner, ex=self.ttl)
                pipe.execute()

    def release(self) -> None:
        for index in self.indexes:
            with self._client(index) as client:
                client.flushdb()
        self.indexes = []


# --- the platform --------------------------------------------------------------------------------


@dataclass
class Process:
    name: str
    popen: subprocess.Popen[bytes]
    log: IO[bytes]


class Platform:
    """The API, worker, beat and mail catcher of one step, each in its own process group."""

    def __init__(
        self, environ: dict[str, str], logs: Path, port: int, workers: int, nice: int = 0
    ) -> None:
        self.environ = environ
        self.logs = logs
        self.port = port
        self.workers = workers
        self.nice = nice
        self.processes: list[Process] = []

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _spawn(self, name: str, argv: list[str]) -> Process:
        handle = (self.logs / f"{name}.log").open("ab")
        if self.nice:
            argv = ["nice", "-n", str(self.nice), *argv]  # nice execs: the pid stays the same
        popen = subprocess.Popen(
            argv,
            cwd=ROOT,
            env=self.environ,
            stdin=subprocess.DEVNULL,
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        process = Process(name, popen, handle)
        self.processes.append(process)
        return process

    def start(self) -> None:
        self.logs.mkdir(parents=True, exist_ok=True)
        smtp_port = int(self.environ["TASKPIPE_SMTP_PORT"])
        self._spawn("mail", [PY, "-m", "aiosmtpd", "-n", "-l", f"127.0.0.1:{smtp_port}"])
        self._spawn(
            "worker",
            [
                PY,
                "-m",
                "celery",
                "-A",
                "worker.app",
                "worker",
                "--queues",
                "email,maintenance,cache",
                "--without-gossip",
                "--without-mingle",
                "--loglevel",
                "INFO",
            ],
        )
        self._spawn("beat", [PY, "-m", "celery", "-A", "worker.app", "beat", "--loglevel", "INFO"])
        self._spawn("api", self.api_argv())
        self._wait_ready()

    def api_argv(self) -> list[str]:
        return [
            PY,
            "-m",
            "uvicorn",
            "api.main:app",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--workers",
            str(self.workers),
            "--loop",
            "uvloop",
            "--http",
            "httptools",
            "--no-access-log",
            "--log-level",
            "warning",
            "--timeout-keep-alive",
            str(KEEP_ALIVE_SECONDS),
        ]

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            for process in self.processes:
                if process.popen.poll() is not None:
                    raise RunError(
                        f"{process.name} exited with {process.popen.returncode}; "
                        f"see {self.logs / (process.name + '.log')}"
                    )
            if self._answers_ready() and len(self.api_workers()) >= self.workers:
                return
            time.sleep(0.25)
        raise RunError(f"the API was not ready within {READY_TIMEOUT:.0f}s; see {self.logs}")

    def _answers_ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.base_url}/ready", timeout=2) as response:
                return bool(response.status == 200)
        except (OSError, urllib.error.URLError):
            return False

    def group(self, name: str) -> list[psutil.Process]:
        """The processes of one platform process: itself and its children."""
        found: list[psutil.Process] = []
        for process in self.processes:
            if process.name == name and process.popen.poll() is None:
                with contextlib.suppress(psutil.Error):
                    parent = psutil.Process(process.popen.pid)
                    found.extend([parent, *parent.children(recursive=True)])
        return found

    def pids(self, *names: str) -> list[int]:
        return [process.popen.pid for process in self.processes if process.name in names]

    def api_workers(self) -> list[psutil.Process]:
        """uvicorn's worker processes (the master only supervises)."""
        api = self.group("api")
        return [process for process in api[1:] if _is_uvicorn_worker(process)]

    def openapi(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"{self.base_url}/openapi.json", timeout=10) as response:
            document: dict[str, Any] = json.load(response)
            return document

    def metrics(self, path: Path) -> dict[str, Any]:
        """Keep /metrics (all workers: PROMETHEUS_MULTIPROC_DIR) and read the cache hit ratios."""
        try:
            request = urllib.request.Request(
                f"{self.base_url}/metrics",
                headers={"Authorization": f"Bearer {self.environ['TASKPIPE_METRICS_TOKEN']}"},
            )
            with urllib.request.urlopen(request, timeout=10) as response:
                text = response.read().decode()
        except (OSError, urllib.error.URLError) as exc:
            return {"error": repr(exc)}
        path.write_text(text)
        return {"cache": cache_ratios(text)}

    def stop(self) -> None:
        """SIGTERM every group (uvicorn and Celery shut down gracefully), SIGKILL stragglers."""
        for process in reversed(self.processes):
            if process.popen.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.popen.pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT
        for process in self.processes:
            try:
                process.popen.wait(max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                log(f"{process.name} did not stop within {STOP_TIMEOUT:.0f}s; killing it")
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.popen.pid, signal.SIGKILL)
                process.popen.wait(10)
            process.log.close()
        self.processes = []


_CACHE_SAMPLE = re.compile(
    r"^taskpipe_cache_requests_total\{(?P<labels>[^}]*)\} (?P<value>[0-9.e+]+)$", re.M
)


def cache_ratios(metrics_text: str) -> dict[str, dict[str, float]]:
    """Hits, misses, errors and the hit ratio of the response cache, by kind."""
    counts: dict[str, dict[str, float]] = {}
    for match in _CACHE_SAMPLE.finditer(metrics_text):
        labels = dict(re.findall(r'(\w+)="([^"]*)"', match["labels"]))
        kind = counts.setdefault(labels.get("kind", "?"), {})
        result = labels.get("result", "?")
        kind[result] = kind.get(result, 0.0) + float(match["value"])
    for kind in counts.values():
        lookups = sum(kind.values())
        kind["hit_ratio"] = round(kind.get("hit", 0.0) / lookups, 3) if lookups else 0.0
    return counts


def _is_uvicorn_worker(process: psutil.Process) -> bool:
    with contextlib.suppress(psutil.Error):
        # uvicorn's workers are multiprocessing spawn children; its resource tracker is not one
        return "resource_tracker" not in " ".join(process.cmdline())
    return False


# --- measuring -----------------------------------------------------------------------------------


class CpuSampler(threading.Thread):
    """Once a second, CPU used in cores (1.0 = one core busy) by: `app` (uvicorn, and each worker
    as `api_worker_N`), `celery`, `locust` (each with its descendants), `postgres` and `redis`
    (by process name, machine-wide: any client counts), `runner` (this process), `machine`, and
    `other`: the rest of the machine, i.e. whoever else was using it during the run.

    One pass over /proc per tick (psutil reads name, parent and CPU times from the same file),
    so sampling costs a few milliseconds, not a share of the machine it measures."""

    NAMED = {"postgres": ("postgres", "postmaster"), "redis": ("redis-server",)}

    def __init__(self, path: Path, roots: dict[str, list[int]], singles: dict[str, int]) -> None:
        super().__init__(name="cpu-sampler", daemon=True)
        self.path = path
        self.roots = roots  # group -> pids whose process trees form the group
        self.singles = singles  # group -> one pid (e.g. a uvicorn worker)
        self.stopped = threading.Event()
        self._last: dict[int, float] = {}

    def _snapshot(self) -> dict[int, tuple[int, str, float]]:
        """pid -> (parent pid, name, CPU seconds used so far)."""
        found = {}
        for process in psutil.process_iter(["ppid", "name", "cpu_times"]):
            info = process.info
            if info["cpu_times"] is not None:
                times = info["cpu_times"]
                found[process.pid] = (info["ppid"], info["name"] or "", times.user + times.system)
        return found

    def _tick(self, elapsed: float) -> dict[str, float]:
        processes = self._snapshot()
        used = {pid: total - self._last.get(pid, total) for pid, (_, _, total) in processes.items()}
        self._last = {pid: total for pid, (_, _, total) in processes.items()}
        children: dict[int, list[int]] = {}
        for pid, (ppid, _, _) in processes.items():
            children.setdefault(ppid, []).append(pid)

        def tree(root: int) -> set[int]:
            members, stack = set(), [root]
            while stack:
                pid = stack.pop()
                if pid in processes and pid not in members:
                    members.add(pid)
                    stack.extend(children.get(pid, ()))
            return members

        cores: dict[str, float] = {}
        counted: set[int] = set()
        for group, roots in self.roots.items():
            members = set().union(*(tree(root) for root in roots)) if roots else set()
            counted |= members
            cores[group] = sum(used[pid] for pid in members) / elapsed
        for group, names in self.NAMED.items():
            members = {pid for pid, (_, name, _) in processes.items() if name in names}
            counted |= members
            cores[group] = sum(used[pid] for pid in members) / elapsed
        cores["runner"] = used.get(os.getpid(), 0.0) / elapsed
        counted.add(os.getpid())
        for group, pid in self.singles.items():
            cores[group] = used.get(pid, 0.0) / elapsed
        cores["other"] = sum(used[pid] for pid in processes if pid not in counted) / elapsed
        return cores

    def run(self) -> None:
        with self.path.open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(("time", "group", "cores"))
            self._snapshot_baseline()
            machine = psutil.cpu_times()
            last = time.monotonic()
            while not self.stopped.wait(1.0):
                now = time.monotonic()
                elapsed, last = now - last, now
                stamp = f"{time.time():.3f}"
                for group, value in self._tick(elapsed).items():
                    writer.writerow((stamp, group, f"{value:.3f}"))
                current = psutil.cpu_times()
                busy = (sum(current) - current.idle - getattr(current, "iowait", 0.0)) - (
                    sum(machine) - machine.idle - getattr(machine, "iowait", 0.0)
                )
                machine = current
                writer.writerow((stamp, "machine", f"{busy / elapsed:.3f}"))
                handle.flush()

    def _snapshot_baseline(self) -> None:
        self._last = {pid: total for pid, (_, _, total) in self._snapshot().items()}

    def stop(self) -> None:
        self.stopped.set()
        self.join(5)


PROFILE_SUFFIX = {"flamegraph": "svg", "speedscope": "json", "raw": "txt"}


def start_profilers(
    platform_: Platform, directory: Path, seconds: int, profile_format: str
) -> list[subprocess.Popen[bytes]]:
    """py-spy on every uvicorn worker for `seconds` (sampling, without pausing the process)."""
    py_spy = Path(PY).with_name("py-spy")
    profilers = []
    for worker in platform_.api_workers():
        output = directory / f"profile-api-{worker.pid}.{PROFILE_SUFFIX[profile_format]}"
        argv = [
            *(str(py_spy), "record", "--pid", str(worker.pid), "--duration", str(seconds)),
            *("--rate", "100", "--nonblocking", "--format", profile_format),
            *("--output", str(output)),
        ]
        log_handle = (directory / "logs" / f"py-spy-{worker.pid}.log").open("ab")
        profilers.append(
            subprocess.Popen(argv, stdout=log_handle, stderr=subprocess.STDOUT, cwd=ROOT)
        )
    return profilers


# --- one step ------------------------------------------------------------------------------------


@dataclass
class Context:
    options: Options
    environ: dict[str, str]
    redis_claim: RedisClaim
    credentials: Path
    accounts: int


def platform_environment(
    database_url: str, redis_claim: RedisClaim, options: Options, heartbeat_dir: Path
) -> dict[str, str]:
    """What the platform, the seed and migrations run with: production, secrets made up here."""
    environ = dict(os.environ)
    environ.update(
        {
            "TASKPIPE_ENV": "production",
            "TASKPIPE_JWT_SECRET": secrets.token_urlsafe(48),
            "TASKPIPE_FLOWER_PASSWORD": secrets.token_urlsafe(24),
            # Production hides both unless asked: the runner reads the API's map and metrics.
            "TASKPIPE_PUBLIC_DOCS": "true",
            "TASKPIPE_METRICS_TOKEN": secrets.token_urlsafe(32),
            "TASKPIPE_BCRYPT_ROUNDS": str(options.bcrypt_rounds),
            "TASKPIPE_DATABASE_URL": database_url,
            "TASKPIPE_REDIS_URL": redis_claim.url(0),
            "TASKPIPE_BROKER_URL": redis_claim.url(1),
            "TASKPIPE_LOG_LEVEL": environ.get("TASKPIPE_LOG_LEVEL", "INFO"),
            "TASKPIPE_LOG_JSON": "true",
            "TASKPIPE_LOGIN_RATE_LIMIT": str(LOGIN_RATE_LIMIT),
            "TASKPIPE_SMTP_HOST": "127.0.0.1",
            "TASKPIPE_SMTP_PORT": str(free_port()),
            "TASKPIPE_HEARTBEAT_DIR": str(heartbeat_dir),
            "PYTHONPATH": str(ROOT),
        }
    )
    environ.pop("TASKPIPE_RESULT_BACKEND_URL", None)
    return environ


def _settings_shown(environ: dict[str, str]) -> dict[str, str]:
    return {
        name: ("***" if name in SECRET_SETTINGS else value)
        for name, value in sorted(environ.items())
        if name.startswith("TASKPIPE_") and "URL" not in name and name != UNDER_DEVSTACK
    }


def run_seed(context: Context, logs: Path) -> dict[str, Any]:
    argv = [
        PY,
        "-m",
        "loadtests.seed",
        "--users",
        str(context.accounts),
        "--tasks-per-user",
        str(context.options.tasks_per_user),
        "--credentials",
        str(context.credentials),
    ]
    started = time.monotonic()
    with (logs / "seed.log").open("ab") as handle:
        result = subprocess.run(
            argv,
            cwd=ROOT,
            env=context.environ,
            stdout=handle,
            stderr=subprocess.STDOUT,
            check=False,
        )
    if result.returncode != 0:
        raise RunError(f"seeding failed; see {logs / 'seed.log'}")
    seconds = round(time.monotonic() - started, 1)
    log(
        f"seeded {context.accounts} accounts x {context.options.tasks_per_user} tasks in {seconds}s"
    )
    return {
        "accounts": context.accounts,
        "tasks_per_user": context.options.tasks_per_user,
        "seconds": seconds,
    }


def locust_argv(
    options: Options, users: int, run_seconds: int, host: str, directory: Path
) -> list[str]:
    argv = [
        PY,
        "-m",
        "locust",
        "-f",
        str(LOCUSTFILE),
        "--headless",
        "-u",
        str(users),
        "-r",
        f"{options.spawn_rate:g}",
        "-t",
        f"{run_seconds}s",
        "--host",
        host,
        "--csv",
        str(directory / "locust"),
        "--csv-full-history",
        "--html",
        str(directory / "report.html"),
        "--only-summary",
        "--loglevel",
        "WARNING",
        "--stop-timeout",
        "10",
    ]
    if options.locust_processes > 1:
        argv += ["--processes", str(options.locust_processes)]
    if options.tags:
        argv += ["--tags", *options.tags.split(",")]
    if options.exclude_tags:
        argv += ["--exclude-tags", *options.exclude_tags.split(",")]
    return argv


def locust_seconds(options: Options, users: int) -> int:
    """Locust's -t: the ramp, 10 s to settle and the steady state (or the shape's plan)."""
    if options.shape:
        return math.ceil(plan_for(options.shape, users, options.spawn_rate)[-1].until) + 5
    return math.ceil(users / options.spawn_rate) + int(SETTLE_SECONDS) + options.hold


def stage_ends(options: Options, users: int) -> list[tuple[str, float]] | None:
    if not options.shape:
        return None
    plan = plan_for(options.shape, users, options.spawn_rate)
    ramp = users / options.spawn_rate
    if options.shape == "soak":
        return [("ramp", ramp), ("steady", plan[0].until)]
    return [
        ("ramp", ramp),
        ("steady", plan[0].until),
        ("surge", plan[1].until),
        ("recovery", plan[2].until),
    ]


def run_step(context: Context, users: int, directory: Path) -> dict[str, Any]:
    options = context.options
    logs = directory / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    context.redis_claim.flush()
    seeding = run_seed(context, logs)
    ramp_seconds = math.ceil(users / options.spawn_rate)
    run_seconds = locust_seconds(options, users)
    port = free_port()
    metrics_dir = directory / "prometheus"
    metrics_dir.mkdir(exist_ok=True)
    # as in docker-compose: several uvicorn processes share /metrics through files
    platform_env = {**context.environ, "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}
    platform_ = Platform(platform_env, logs, port, options.workers, options.platform_nice)
    locust_env = {
        **context.environ,
        env.CREDENTIALS: str(context.credentials),
        env.REQUEST_LOG: str(directory),
    }
    if options.shape:
        locust_env[env.SHAPE] = options.shape
    argv = locust_argv(options, users, run_seconds, platform_.base_url, directory)
    load_before = os.getloadavg()
    started_at = datetime.now(UTC)
    try:
        platform_.start()
        openapi = platform_.openapi()
        log(
            f"platform up at {platform_.base_url} ({options.workers} uvicorn workers); "
            f"Locust: {users} users at {options.spawn_rate:g}/s for {run_seconds}s"
        )
        with (logs / "locust.log").open("ab") as locust_log:
            locust = subprocess.Popen(
                argv,
                cwd=ROOT,
                env=locust_env,
                stdout=locust_log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

            sampler = CpuSampler(
                directory / "cpu.csv",
                roots={
                    "app": platform_.pids("api"),
                    "celery": platform_.pids("worker", "beat"),
                    "locust": [locust.pid],
                },
                singles={
                    f"api_worker_{index}": worker.pid
                    for index, worker in enumerate(platform_.api_workers(), start=1)
                },
            )
            sampler.start()
            profilers = []
            try:
                if options.profile:
                    time.sleep(ramp_seconds + SETTLE_SECONDS)
                    profilers = start_profilers(
                        platform_,
                        directory,
                        max(run_seconds - ramp_seconds - 15, 5),
                        options.profile,
                    )
                try:
                    returncode = locust.wait(run_seconds + 120)
                except subprocess.TimeoutExpired:
                    os.killpg(locust.pid, signal.SIGKILL)
                    raise RunError(f"Locust overran its {run_seconds}s by two minutes") from None
            finally:
                sampler.stop()
                for profiler in profilers:
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        profiler.wait(30)
                if locust.poll() is None:
                    os.killpg(locust.pid, signal.SIGTERM)
                    locust.wait(30)
        app_metrics = platform_.metrics(directory / "metrics.txt")
    finally:
        platform_.stop()
    if not any(path.stat().st_size > 64 for path in directory.glob("requests-*.csv")):
        raise RunError(f"Locust sent no request (exit {returncode}); see {logs / 'locust.log'}")
    summary = summarize(
        directory,
        target_users=users,
        stage_ends=stage_ends(options, users),
        p95_target_ms=options.p95_target_ms,
    )
    summary["unknown_routes"] = unknown_routes(directory / "locust_stats.csv", openapi)
    summary["app_metrics"] = app_metrics
    if summary["unknown_routes"]:
        summary["verdict"]["passed"] = False
        summary["verdict"]["reasons"].append("requests named by something that is not a route")
    summary["run"] = {
        "started_at": started_at.isoformat(timespec="seconds"),
        "command": shlex.join(["python", "-m", "loadtests.run", *options.argv]),
        "users": users,
        "spawn_rate": options.spawn_rate,
        "ramp_seconds": ramp_seconds,
        "steady_seconds": options.hold,
        "locust_run_seconds": run_seconds,
        "shape": options.shape,
        "uvicorn_workers": options.workers,
        "locust_processes": options.locust_processes,
        "locust_exit_code": returncode,
        "seed": seeding,
        "api_command": shlex.join(platform_.api_argv()),
        "locust_command": shlex.join(argv),
        "settings": _settings_shown(context.environ),
        "git": _git_state(),
    }
    summary["machine"] = _machine(load_before)
    (directory / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def unknown_routes(stats_csv: Path, openapi: dict[str, Any]) -> list[str]:
    """Request names in Locust's stats that are not a (method, path template) of the app."""
    known = {
        (method.upper(), path) for path, item in openapi.get("paths", {}).items() for method in item
    }
    if not stats_csv.exists():
        return []
    with stats_csv.open(newline="") as handle:
        return sorted(
            f"{row['Type']} {row['Name']}"
            for row in csv.DictReader(handle)
            if row["Name"] != "Aggregated" and (row["Type"], row["Name"]) not in known
        )


def _git_state() -> dict[str, Any]:
    def git(*args: str) -> str:
        result = subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, check=False
        )
        return result.stdout.strip()

    return {"commit": git("rev-parse", "HEAD"), "dirty": bool(git("status", "--porcelain"))}


def _machine(load_before: tuple[float, float, float]) -> dict[str, Any]:
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "load_average_before": [round(value, 2) for value in load_before],
    }


# --- reporting ---------------------------------------------------------------------------------


def print_summary(summary: dict[str, Any], directory: Path) -> None:
    windows = summary["windows"]
    lines = [f"report: {directory}", "window     requests  fail   rps     p50     p95     p99"]
    for name, figures in windows.items():
        lines.append(
            f"{name:<10} {figures['requests']:>8} {figures['failures']:>5} {figures['rps']:>6} "
            f"{_fmt(figures['p50_ms'])} {_fmt(figures['p95_ms'])} {_fmt(figures['p99_ms'])}"
        )
    steady = windows.get("steady")
    if steady:
        lines.append("steady state by route (p95 ms, slowest first):")
        routes = sorted(steady["routes"].items(), key=lambda item: -(item[1]["p95_ms"] or 0))
        for route, figures in routes:
            lines.append(
                f"  {route:<52} {figures['requests']:>7} {figures['failures']:>4} "
                f"p50 {_fmt(figures['p50_ms'])} p95 {_fmt(figures['p95_ms'])}"
            )
    cpu = summary["cpu_cores"].get("steady", {})
    if cpu:
        lines.append("steady-state CPU (cores): " + ", ".join(f"{k} {v}" for k, v in cpu.items()))
    for failure in summary["failures"][:10]:
        lines.append(
            f"failure: {failure['occurrences']}x {failure['method']} {failure['name']}: "
            f"{failure['error']}"
        )
    verdict = summary["verdict"]
    lines.append("PASS" if verdict["passed"] else "FAIL: " + "; ".join(verdict["reasons"] or ["?"]))
    print("\n".join(lines), flush=True)


def _fmt(value: float | None) -> str:
    return f"{value:>7.1f}" if value is not None else "      -"


# --- main ----------------------------------------------------------------------------------------


def execute(options: Options) -> int:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    report_root = options.report_root / stamp
    report_root.mkdir(parents=True, exist_ok=True)
    load = os.getloadavg()[0]
    if load > 0.5 * (os.cpu_count() or 1):
        log(f"the machine is busy (load {load:.2f}): the figures will show it")
    with contextlib.ExitStack() as stack:
        stack.enter_context(exclusive_lock())
        database_url = make_url(os.environ["TASKPIPE_DATABASE_URL"])
        asyncio.run(_recreate_database(database_url))
        # held for the whole run (a test run must never take and flush it), re-set each step
        ttl = sum(locust_seconds(options, users) + 600 for users in options.steps) + 3600
        claim = RedisClaim(os.environ["TASKPIPE_REDIS_URL"], count=2, ttl=ttl)
        stack.callback(claim.release)
        state = report_root / "state"  # heartbeats and beat's schedule file
        state.mkdir(exist_ok=True)
        environ = platform_environment(
            database_url.render_as_string(hide_password=False), claim, options, state
        )
        migrate(environ, report_root / "logs")
        context = Context(
            options=options,
            environ=environ,
            redis_claim=claim,
            credentials=report_root / "credentials.csv",
            accounts=max(options.peak_users(users) for users in options.steps),
        )
        # live credentials for a database that is dropped next time: never leave them around
        stack.callback(context.credentials.unlink, missing_ok=True)
        summaries = []
        for users in options.steps:
            directory = report_root / f"users-{users:05d}" if options.ladder else report_root
            summary = run_step(context, users, directory)
            print_summary(summary, directory)
            summaries.append(summary)
    _point_latest(report_root)
    if options.ladder:
        from loadtests.plot import write_ladder

        held = write_ladder(report_root, summaries, options.p95_target_ms)
        log(
            f"ladder: {report_root / 'ladder.png'}; largest user count holding the target: "
            f"{held if held else 'none'}"
        )
        return 0
    return 0 if summaries[0]["verdict"]["passed"] else 1


def _point_latest(report_root: Path) -> None:
    latest = report_root.parent / "latest"
    with contextlib.suppress(OSError):
        if latest.is_symlink() or latest.exists():
            latest.unlink()
        latest.symlink_to(report_root.name)


def _interrupt(_signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt


def under_devstack(argv: Sequence[str], database: str) -> int:
    """Run this same command inside `python -m common.devstack run`, which provides PostgreSQL
    and Redis (found, started or embedded), stops what it embedded afterwards, and forwards
    signals; devstack's command line is its stable interface."""
    command = [
        *(PY, "-m", "common.devstack", "run", "--database", database),
        *("--", PY, "-m", "loadtests.run", *argv),
    ]
    child = subprocess.Popen(command, cwd=ROOT, env={**os.environ, UNDER_DEVSTACK: "1"})

    def forward(signum: int, _frame: Any) -> None:
        if signum == signal.SIGINT and _terminal_sent_it_too():
            return  # Ctrl-C reached the whole foreground group, the run included
        with contextlib.suppress(ProcessLookupError):
            child.send_signal(signum)

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, forward)
    return child.wait()


def _terminal_sent_it_too() -> bool:
    try:
        with open("/dev/tty", "rb") as tty:
            return os.tcgetpgrp(tty.fileno()) == os.getpgrp()
    except OSError:
        return False


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    options = parse_args(arguments)
    if not os.environ.get(UNDER_DEVSTACK):
        return under_devstack(arguments, options.database)
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _interrupt)  # stop what was started, as on Ctrl-C
    try:
        return execute(options)
    except RunError as exc:
        log(str(exc))
        return 2
    except KeyboardInterrupt:
        log("interrupted; everything started was stopped")
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
