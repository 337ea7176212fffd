"""One step of a run: seed, start the platform, run Locust against it, summarise."""

from __future__ import annotations

import contextlib
import csv
import json
import math
import os
import platform
import secrets
import shlex
import signal
import subprocess
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

from common.config import Settings
from devstack.machine import RedisClaim, free_port
from loadtests import env
from loadtests.measuring import CpuSampler, start_profilers
from loadtests.options import Options
from loadtests.plans import plan_for
from loadtests.runner import LOCUSTFILE, PY, ROOT, UNDER_DEVSTACK, RunError, log
from loadtests.services import Platform
from loadtests.summary import SETTLE_SECONDS, summarize

LOGIN_RATE_LIMIT = 1_000_000
"""Every simulated user comes from 127.0.0.1, which the per-IP login limit (20/min) would refuse;
real users come from many addresses. The limiter still runs (one Lua call a login); lockout
(per account) keeps its production setting."""
SECRET_SETTINGS = (
    "TASKPIPE_JWT_SECRET",
    "TASKPIPE_FLOWER_PASSWORD",
    "TASKPIPE_SMTP_PASSWORD",
    "TASKPIPE_METRICS_TOKEN",
)


@dataclass
class Context:
    options: Options
    environ: dict[str, str]
    redis_claim: RedisClaim
    credentials: Path
    accounts: int


def _default(setting: str) -> object:
    return Settings.model_fields[setting].default


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
            # Passwords at the production cost, whatever the calling shell says.
            "TASKPIPE_PASSWORD_HASH_MEMORY_KIB": str(_default("password_hash_memory_kib")),
            "TASKPIPE_PASSWORD_HASH_ITERATIONS": str(_default("password_hash_iterations")),
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
