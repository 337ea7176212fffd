"""`taskpipe`: the operator's command line.

    taskpipe jobs list
    taskpipe jobs run purge|reminders|relay|warm [--now ISO] [--enqueue]
    taskpipe queues
    taskpipe users create --email E --name N [--password P] [--verified]
    taskpipe check
    taskpipe webhooks listen [--port 8001] [--secret whsec_...]

Beside a running `make run` it uses that stack's servers, embedded ones included: devstack writes
them (and `TASKPIPE_ENV=development`) to `.taskpipe/stack.json`, or the file named by
`TASKPIPE_STACK_FILE`; variables set in the environment still win. A server it cannot reach, or
settings it cannot use, are reported in a sentence that says what to do, never as a traceback.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
from kombu.exceptions import OperationalError as BrokerError
from pydantic import ValidationError
from redis.exceptions import RedisError
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, InterfaceError

from common.config import get_settings
from common.logging import configure_logging

STACK_FILE = Path(__file__).resolve().parents[1] / ".taskpipe" / "stack.json"
STACK_FILE_VARIABLE = "TASKPIPE_STACK_FILE"
JOB_NAMES = ("purge", "reminders", "relay", "warm")
EXIT_FAILED = 1
EXIT_USAGE = 2


class UsageError(Exception):
    """The command cannot do what was asked as it was asked (exit 2)."""


@dataclass(frozen=True)
class DevStack:
    """The servers of a running `make run`, from the state file its devstack keeps."""

    path: Path
    environment: dict[str, str]
    connect: dict[str, str] = field(default_factory=dict)


def running_dev_stack() -> DevStack | None:
    path = Path(os.environ.get(STACK_FILE_VARIABLE) or STACK_FILE)
    try:
        state = json.loads(path.read_text())
        pid = int(state["pid"])
        environment = {
            str(name): str(value)
            for name, value in dict(state["environment"]).items()
            if str(name).startswith("TASKPIPE_")
        }
        connect = {str(name): str(value) for name, value in dict(state["connect"]).items()}
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return DevStack(path, environment, connect) if _alive(pid) else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except (OSError, OverflowError, ValueError):
        return False
    return True


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="taskpipe", description="Taskpipe operations")
    commands = parser.add_subparsers(dest="command", required=True)

    jobs = commands.add_parser("jobs", help="run a background job now").add_subparsers(
        dest="action", required=True
    )
    run_parser = jobs.add_parser("run", help="run one job in this process (or enqueue it)")
    run_parser.add_argument("job", choices=JOB_NAMES)
    run_parser.add_argument("--now", type=datetime.fromisoformat, help="ISO instant to run as")
    run_parser.add_argument("--enqueue", action="store_true", help="send to the workers instead")
    jobs.add_parser("list", help="list the jobs")

    commands.add_parser(
        "queues", help="queue depths, unacknowledged jobs, the outbox (in flight, overdue, parked)"
    )
    commands.add_parser(
        "check", help="can this process reach PostgreSQL, Redis and SMTP? (and how to connect)"
    )

    users = commands.add_parser("users", help="manage accounts").add_subparsers(
        dest="action", required=True
    )
    create = users.add_parser("create", help="create an account")
    create.add_argument("--email", required=True)
    create.add_argument("--name", required=True)
    create.add_argument("--password", help="asked for twice on the terminal when omitted")
    create.add_argument("--verified", action="store_true", help="mark the email verified")

    webhooks = commands.add_parser("webhooks", help="webhook tools").add_subparsers(
        dest="action", required=True
    )
    listen = webhooks.add_parser("listen", help="receive, verify and print deliveries (dev)")
    listen.add_argument("--host", default="127.0.0.1")
    listen.add_argument("--port", type=int, default=8001)
    listen.add_argument("--secret", help="the webhook's whsec_ secret, to verify signatures")
    return parser


def ask_password() -> str:
    """The password, typed twice on the terminal (never echoed)."""
    try:
        with open("/dev/tty", "rb"):
            pass
    except OSError:
        raise UsageError(
            "no terminal to ask for the password on: pass --password, or run the command "
            "in a terminal"
        ) from None
    try:
        first = getpass.getpass("Password: ")
        second = getpass.getpass("Password again: ")
    except EOFError:
        raise UsageError("no password given") from None
    if first != second:
        raise UsageError("the two passwords differ")
    return first


def execute(args: argparse.Namespace, stack: DevStack | None) -> int:
    if args.command == "webhooks":  # needs no settings and no server
        from worker.webhook_listener import listen

        try:
            return listen(args.host, args.port, args.secret)
        except (ValueError, OSError) as exc:
            raise UsageError(f"cannot listen: {exc}") from None

    from worker import cli_commands as commands  # reads the settings: only now

    settings = get_settings()
    # stdout carries the answer (JSON); what the jobs log goes to stderr
    configure_logging(settings.log_level, json=settings.log_json, stream=sys.stderr)

    if args.command == "jobs" and args.action == "list":
        commands.print_json(commands.list_jobs())
    elif args.command == "jobs":
        now = args.now or datetime.now(UTC)
        if now.tzinfo is None:
            now = now.replace(tzinfo=UTC)
        commands.print_json(commands.run_job(args.job, now, enqueue=args.enqueue))
    elif args.command == "queues":
        commands.print_json(commands.queue_depths())
    elif args.command == "check":
        results = commands.check()
        connect = stack.connect if stack else commands.connect_commands(settings)
        commands.print_json({**results, "connect": connect})
        return 0 if all(value == "ok" for value in results.values()) else EXIT_FAILED
    else:
        password = args.password if args.password is not None else ask_password()
        try:
            created = commands.create_user(args.email, args.name, password, verified=args.verified)
        except commands.WeakPassword as exc:
            raise UsageError(str(exc)) from None
        except commands.DuplicateAccount as exc:
            _error(str(exc))
            return EXIT_FAILED
        commands.print_json(created)
    return 0


def _error(message: str) -> None:
    print(f"taskpipe: error: {message}", file=sys.stderr)


def _unreachable(service: str, url: str, exc: BaseException, stack: DevStack | None) -> None:
    from worker.cli_commands import reason

    variable = "TASKPIPE_DATABASE_URL" if service == "PostgreSQL" else "TASKPIPE_REDIS_URL"
    _error(f"cannot reach {service} at {url}: {reason(exc)}")
    if stack is not None:
        hint = f"these are the servers of the running `make run` ({stack.path}); is it healthy?"
    else:
        hint = (
            "start the platform with `make run` in the repository (this command then finds "
            f"its servers), or set {variable} to a running {service}"
        )
    print(f"taskpipe: {hint}", file=sys.stderr)


DATABASE_ERRORS = (OSError, asyncpg.PostgresError, DBAPIError, InterfaceError)
"""What reaching PostgreSQL raises (asyncpg's connect errors come through unwrapped)."""


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    stack = running_dev_stack()
    if stack is not None:
        for name, value in stack.environment.items():
            os.environ.setdefault(name, value)
    try:
        return execute(args, stack)
    except UsageError as exc:
        _error(str(exc))
        return EXIT_USAGE
    except ValidationError as exc:
        problems = "; ".join(error["msg"] for error in exc.errors())
        _error(f"the settings cannot be used: {problems}")
        print(
            "taskpipe: for local use start `make run` first (or set TASKPIPE_ENV=development)",
            file=sys.stderr,
        )
        return EXIT_FAILED
    except (RedisError, BrokerError) as exc:
        broker = re.sub(r"//([^:@/]*):[^@/]*@", r"//\1:***@", get_settings().celery_broker_url)
        _unreachable("Redis", broker, exc, stack)
        return EXIT_FAILED
    except DATABASE_ERRORS as exc:
        url = make_url(get_settings().database_url).render_as_string(hide_password=True)
        _unreachable("PostgreSQL", url, exc, stack)
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
