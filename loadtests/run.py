"""Run the load test end to end: services, platform, seed, Locust, report. `make loadtest`.

    python -m loadtests.run --users 1000 --spawn-rate 10 --duration 3m
    python -m loadtests.run --ladder 250,500,1000,1500,2000 --spawn-rate 10 --duration 2m
    python -m loadtests.run --shape spike --users 500

1. PostgreSQL and Redis from devstack (`python -m devstack run`, which this command wraps
   itself in: found, started or embedded), a fresh database (`taskpipe_load`, dropped and
   re-created, then migrated) and two Redis databases claimed the way the test suite claims
   them (`devstack.machine.RedisClaim`: cache and limits, and the Celery broker), flushed
   before each step.
2. The platform in production mode: `TASKPIPE_ENV=production` with a JWT secret and a Flower
   password generated for the run, Argon2id at the production cost, INFO logs; the API as
   everywhere else (`python -m api.server`, uvloop and httptools) with several workers; a
   Celery worker and beat; a mail catcher. Logs go to `logs/`.
3. `loadtests.seed` for the accounts, tasks and sessions, then Locust headless. `--duration` is
   the steady state *after* the ramp: Locust runs users/spawn-rate + 10 s + duration.
4. Everything it started is stopped (also on Ctrl-C), and `loadtests/reports/<timestamp>/`
   holds Locust's HTML report and CSVs, the per-request log, CPU samples and `summary.json`.

Exit status: 0 when the steady-state p95 is under 200 ms and no request failed, 1 when not,
2 when the run itself could not be done. A ladder exits 0 when every step ran, and says which
user counts held the target.

The parts: `options` (the command line), `database`, `services` (the platform's processes),
`measuring` (CPU samples, py-spy), `step` (seed, platform, Locust, summary), `report`.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import signal
import sys
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.engine import make_url

from devstack.machine import NoFreeRedisDatabase, RedisClaim, run_forwarding_signals
from loadtests.database import migrate, recreate_database
from loadtests.options import Options, parse_args
from loadtests.report import point_latest, print_summary
from loadtests.runner import LOCK_FILE, PY, ROOT, UNDER_DEVSTACK, RunError, log
from loadtests.step import Context, locust_seconds, platform_environment, run_step


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
        asyncio.run(recreate_database(database_url))
        # held for the whole run (a test run must never take and flush it), re-set each step
        ttl = sum(locust_seconds(options, users) + 600 for users in options.steps) + 3600
        try:
            claim = RedisClaim(
                os.environ["TASKPIPE_REDIS_URL"],
                owner=f"loadtest-{os.getpid()}",
                count=2,
                ttl=ttl,
                from_top=True,  # tests claim from the bottom
            )
        except NoFreeRedisDatabase as exc:
            raise RunError(str(exc)) from exc
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
    point_latest(report_root)
    if options.ladder:
        from loadtests.plot import write_ladder

        held = write_ladder(report_root, summaries, options.p95_target_ms)
        log(
            f"ladder: {report_root / 'ladder.png'}; largest user count holding the target: "
            f"{held if held else 'none'}"
        )
        return 0
    return 0 if summaries[0]["verdict"]["passed"] else 1


def _interrupt(_signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt


def under_devstack(argv: Sequence[str], database: str) -> int:
    """Run this same command inside `python -m devstack run`, which provides PostgreSQL
    and Redis (found, started or embedded), stops what it embedded afterwards, and forwards
    signals; devstack's command line is its stable interface."""
    command = [
        *(PY, "-m", "devstack", "run", "--database", database),
        *("--", PY, "-m", "loadtests.run", *argv),
    ]
    return run_forwarding_signals(command, env={**os.environ, UNDER_DEVSTACK: "1"}, cwd=ROOT)


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
