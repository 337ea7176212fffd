"""The runner's command line: users, spawn rate, steady state, ladder, shape and the knobs."""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from loadtests import env
from loadtests.plans import SHAPES, plan_for
from loadtests.runner import REPORTS
from loadtests.summary import P95_TARGET_MS

DEFAULT_USERS = 1000
DEFAULT_SPAWN_RATE = 10.0
"""Users arriving per second. 1000 concurrent users with sessions of ~20 minutes means about one
new session a second; 10/s is a morning peak ten times that, and 1000 users are in within 100 s.
A spawn rate of 100+ would be every user opening the app in the same ten seconds (a push to all,
the end of an outage): that is the spike shape's job, not the capacity figure's."""
DEFAULT_HOLD = "3m"
DEFAULT_TASKS_PER_USER = 100
DEFAULT_DATABASE = "taskpipe_load"
PLATFORM_NICE = 5
"""Locust shares the machine with what it measures. Under a CPU-bound platform the kernel would
make Locust wait its turn behind the uvicorn workers, and that wait, which no remote client
sees, would count as response time. So the processes under test (API, worker, beat, mail) run
at nice +5: Locust, PostgreSQL and Redis are served first. The platform still gets every cycle
Locust does not use. `--platform-nice 0` measures without this (see README, Performance)."""


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
        profile=args.profile,
        p95_target_ms=args.p95_target_ms,
        report_root=args.report_dir,
        tags=args.tags,
        platform_nice=args.platform_nice,
        exclude_tags=args.exclude_tags,
        argv=list(argv),
    )
