"""`python -m devstack run|check`: provide the services, then run the command."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shlex
import signal
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from sqlalchemy.engine import make_url

from common.config import get_settings
from devstack.machine import run_forwarding_signals
from devstack.postgres import database_exists, ensure_database, provide_postgres
from devstack.redis import provide_redis
from devstack.support import (
    REPO_ROOT,
    DevstackError,
    Embedded,
    Service,
    log,
)

EXIT_UNAVAILABLE = 1


def migrate(env: dict[str, str]) -> None:
    log("running alembic upgrade head")
    result = subprocess.run(
        [sys.executable, "-m", "alembic", "upgrade", "head"], cwd=REPO_ROOT, env=env, check=False
    )
    if result.returncode != 0:
        raise DevstackError(
            f"alembic upgrade head failed with exit code {result.returncode} (output above)"
        )


def run_command(command: Sequence[str], env: dict[str, str]) -> int:
    """Run `command` with the signals that should stop it passed on; return its exit status."""
    try:
        return run_forwarding_signals(command, env=env)
    except OSError as exc:
        raise DevstackError(f"cannot run {command[0]!r}: {exc.strerror or exc}") from exc


@dataclass(frozen=True)
class Options:
    action: str
    database: str | None
    migrate: bool
    embedded: Embedded
    data_dir: Path
    command: list[str]


def parse_args(argv: Sequence[str]) -> Options:
    argv = list(argv)
    command: list[str] = []
    if "--" in argv:
        split = argv.index("--")
        argv, command = argv[:split], argv[split + 1 :]
    parser = argparse.ArgumentParser(
        prog="python -m devstack",
        description="Find or start PostgreSQL and Redis for Taskpipe, then run a command.",
    )
    actions = parser.add_subparsers(dest="action", required=True)
    run = actions.add_parser(
        "run",
        usage="%(prog)s [options] -- CMD [ARGS...]",
        help="provide the services, then run CMD (after --)",
    )
    check = actions.add_parser("check", help="show which services run would use")
    for sub in (run, check):
        sub.add_argument("--database", metavar="NAME", help="database name instead of the URL's")
        sub.add_argument(
            "--embedded",
            type=Embedded,
            choices=list(Embedded),
            default=Embedded.AUTO,
            help="auto: embed only when nothing else works (default); always; never",
        )
        sub.add_argument(
            "--data-dir",
            metavar="DIR",
            type=Path,
            default=REPO_ROOT / ".taskpipe",
            help="where embedded servers keep their files (default: .taskpipe in the repo)",
        )
    run.add_argument("--migrate", action="store_true", help="run alembic upgrade head first")
    args = parser.parse_args(argv)
    if args.action == "run" and not command:
        parser.error("run needs a command after --, e.g. run -- honcho start")
    if args.action == "check" and command:
        parser.error("check takes no command")
    return Options(
        action=args.action,
        database=args.database,
        migrate=getattr(args, "migrate", False),
        embedded=args.embedded,
        data_dir=args.data_dir.expanduser().resolve(),
        command=command,
    )


def provide(options: Options, stack: contextlib.ExitStack) -> tuple[Service, Service]:
    settings = get_settings()
    database_url = make_url(settings.database_url)
    if options.database:
        database_url = database_url.set(database=options.database)
    postgres = provide_postgres(database_url, options.embedded, options.data_dir, stack)
    redis = provide_redis(settings.redis_url, options.embedded, options.data_dir, stack)
    for variable in ("TASKPIPE_BROKER_URL", "TASKPIPE_RESULT_BACKEND_URL"):
        if os.environ.get(variable):
            log(f"{variable} is set, so it is left as it is rather than following the Redis URL")
    return postgres, redis


def _describe(service: Service) -> str:
    origin = service.origin.value
    return f"{service.name:<10}  {origin:<8}  {service.display_url}  ({service.detail})"


def _interrupt(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_args(sys.argv[1:] if argv is None else argv)
    # SIGTERM/SIGHUP while servers start must still stop what was embedded, as Ctrl-C does.
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _interrupt)
    try:
        with contextlib.ExitStack() as stack:
            postgres, redis = provide(options, stack)
            database_url = make_url(postgres.url)
            if options.action == "check":
                exists = asyncio.run(database_exists(database_url))
                print(_describe(postgres))
                state = "exists" if exists else "missing (run creates it)"
                print(f"{'':<10}  {'':<8}  database {database_url.database}: {state}")
                print(_describe(redis))
                return 0
            if asyncio.run(ensure_database(database_url)):
                log(f"created database {database_url.database}")
            env = dict(os.environ)
            env["TASKPIPE_DATABASE_URL"] = postgres.url
            env["TASKPIPE_REDIS_URL"] = redis.url
            if options.migrate:
                migrate(env)
            log(f"running {shlex.join(options.command)}")
            return run_command(options.command, env)
    except DevstackError as exc:
        log(str(exc))
        return EXIT_UNAVAILABLE
    except KeyboardInterrupt:
        log("interrupted")
        return 128 + signal.SIGINT
