"""`python -m devstack run|up|check|status`: the command line (see the package docstring)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
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
from devstack import stack as stack_
from devstack.machine import pid_alive, run_forwarding_signals
from devstack.postgres import database_exists, ensure_database, provide_postgres
from devstack.redis import provide_redis
from devstack.support import REPO_ROOT, DevstackError, Embedded, Origin, Service, log

EXIT_UNAVAILABLE = 1
DEVELOPMENT = "development"
"""What TASKPIPE_ENV becomes for devstack and the processes it starts when it is unset (the
settings' own default is `production`, which refuses the development secrets)."""


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
    procfile: Path
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
    up = actions.add_parser(
        "up", help="provide and migrate the services, then run the Procfile (make run)"
    )
    check = actions.add_parser("check", help="show which services run would use; starts nothing")
    status = actions.add_parser("status", help="the running `make run` stack: URLs, ports, psql")
    for sub in (run, up, check, status):
        sub.add_argument(
            "--data-dir",
            metavar="DIR",
            type=Path,
            default=REPO_ROOT / ".taskpipe",
            help="where embedded servers and the stack file live (default: .taskpipe in the repo)",
        )
    for sub in (run, up, check):
        sub.add_argument("--database", metavar="NAME", help="database name instead of the URL's")
        sub.add_argument(
            "--embedded",
            type=Embedded,
            choices=list(Embedded),
            default=Embedded.AUTO,
            help="auto: embed only when nothing else works (default); always; never",
        )
    run.add_argument("--migrate", action="store_true", help="run alembic upgrade head first")
    up.add_argument(
        "--procfile", type=Path, default=REPO_ROOT / "Procfile", help="default: the repo's"
    )
    args = parser.parse_args(argv)
    if args.action == "run" and not command:
        parser.error("run needs a command after --, e.g. run -- honcho start")
    if args.action != "run" and command:
        parser.error(f"{args.action} takes no command")
    return Options(
        action=args.action,
        database=getattr(args, "database", None),
        migrate=args.action == "up" or getattr(args, "migrate", False),
        embedded=getattr(args, "embedded", Embedded.AUTO),
        data_dir=args.data_dir.expanduser().resolve(),
        procfile=getattr(args, "procfile", REPO_ROOT / "Procfile").resolve(),
        command=command,
    )


def provide(
    options: Options, stack: contextlib.ExitStack, *, start: bool = True
) -> tuple[Service, Service]:
    settings = get_settings()
    database_url = make_url(settings.database_url)
    if options.database:
        database_url = database_url.set(database=options.database)
    postgres = provide_postgres(
        database_url, options.embedded, options.data_dir, stack, start=start
    )
    redis = provide_redis(
        settings.redis_url, options.embedded, options.data_dir, stack, start=start
    )
    for variable in ("TASKPIPE_BROKER_URL", "TASKPIPE_RESULT_BACKEND_URL"):
        if os.environ.get(variable):
            log(f"{variable} is set, so it is left as it is rather than following the Redis URL")
    return postgres, redis


def _describe(service: Service) -> str:
    origin = service.origin.value
    return f"{service.name:<10}  {origin:<8}  {service.display_url}  ({service.detail})"


def check(options: Options) -> int:
    """What `run` would use, found without starting, creating or changing anything."""
    with contextlib.ExitStack() as nothing_to_release:
        postgres, redis = provide(options, nothing_to_release, start=False)
    print(_describe(postgres))
    database = options.database or make_url(get_settings().database_url).database
    if postgres.origin in (Origin.FOUND, Origin.EMBEDDED):
        exists = asyncio.run(database_exists(make_url(postgres.url)))
        state = "exists" if exists else "missing (run creates it)"
    else:
        state = "created by run once the server runs"
    print(f"{'':<10}  {'':<8}  database {database}: {state}")
    print(_describe(redis))
    return 0


def status(options: Options) -> int:
    """Print the running stack's state file, or say that no stack runs."""
    path = stack_.state_path(options.data_dir)
    try:
        state = json.loads(path.read_text())
    except (OSError, ValueError):
        print(f"no `make run` stack is running here (no {path})")
        return EXIT_UNAVAILABLE
    if not pid_alive(int(state.get("pid", 0))):
        print(f"no `make run` stack is running here ({path} is left from one that died)")
        return EXIT_UNAVAILABLE
    print(json.dumps(state, indent=2))
    return 0


def up(options: Options, stack: contextlib.ExitStack) -> int:
    settings = get_settings()
    ports = stack_.stack_ports(stack_.read_procfile(options.procfile), settings)
    api_url = stack_.api_url(ports)
    stack_.refuse_taken_ports(ports)
    postgres, redis = provide(options, stack)
    env = stack_.stack_environment(os.environ, postgres, redis, options.data_dir)
    _prepare_database(postgres, env, migrate_it=True)
    state = stack_.StackState(
        stack_.state_path(options.data_dir),
        stack_.state_content(env, ports, postgres, redis, settings),
    )
    state.write()
    stack.callback(state.remove)
    banner = list(stack_.banner_lines(state.content, settings, state.path))
    command = stack_.honcho_command(options.procfile)
    log(f"running {shlex.join(command)}")
    return stack_.run_stack(command, env, api_url, banner)


def _prepare_database(postgres: Service, env: dict[str, str], *, migrate_it: bool) -> None:
    database_url = make_url(postgres.url)
    if asyncio.run(ensure_database(database_url)):
        log(f"created database {database_url.database}")
    if migrate_it:
        migrate(env)


def run(options: Options, stack: contextlib.ExitStack) -> int:
    postgres, redis = provide(options, stack)
    env = dict(os.environ)
    env["TASKPIPE_DATABASE_URL"] = postgres.url
    env["TASKPIPE_REDIS_URL"] = redis.url
    _prepare_database(postgres, env, migrate_it=options.migrate)
    log(f"running {shlex.join(options.command)}")
    return run_command(options.command, env)


def _interrupt(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_args(sys.argv[1:] if argv is None else argv)
    # Before the settings are read: devstack and what it starts are development tooling.
    os.environ.setdefault("TASKPIPE_ENV", DEVELOPMENT)
    # SIGTERM/SIGHUP while servers start must still stop what was embedded, as Ctrl-C does.
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _interrupt)
    try:
        if options.action == "check":
            return check(options)
        if options.action == "status":
            return status(options)
        with contextlib.ExitStack() as stack:
            if options.action == "up":
                return up(options, stack)
            return run(options, stack)
    except DevstackError as exc:
        log(str(exc))
        return EXIT_UNAVAILABLE
    except KeyboardInterrupt:
        log("interrupted")
        # `make run` stopped on purpose is no error (make would print `Error 130`)
        return 0 if options.action == "up" else 128 + signal.SIGINT
