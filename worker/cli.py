"""`taskpipe`: the operator's command line.

taskpipe jobs run purge|reminders|relay [--now ISO] [--enqueue]
taskpipe queues
taskpipe users create --email E --name N [--password P] [--verified]
taskpipe check
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError

from common.jobs import JobName, JobPublisher, Queue
from common.maintenance.outbox import relay_outbox
from common.models import OutboxJob, User
from common.security.passwords import PasswordHasher, password_problems
from worker.app import app
from worker.runtime import WorkerRuntime, run
from worker.tasks.cache import warm_active
from worker.tasks.maintenance import purge
from worker.tasks.reminders import scan

JOBS: dict[str, tuple[str, Callable[[WorkerRuntime, datetime], Any]]] = {
    "purge": (JobName.PURGE_DELETED, lambda rt, now: purge(rt, now)),
    "reminders": (JobName.SCAN_DUE_REMINDERS, lambda rt, now: scan(rt, now)),
    "relay": (
        JobName.RELAY_OUTBOX,
        lambda rt, now: relay_outbox(rt.session_factory, JobPublisher(app)),
    ),
    "warm": (JobName.WARM_ACTIVE_USERS, lambda rt, now: warm_active(rt, now)),
}


def _print(data: object) -> None:
    print(json.dumps(data, indent=2, default=str))


def run_job(name: str, now: datetime, *, enqueue: bool) -> int:
    task_name, job = JOBS[name]
    if enqueue:
        kwargs = {} if name == "relay" else {"now": now.isoformat()}
        result = app.send_task(task_name, kwargs=kwargs)
        _print({"job": name, "enqueued": result.id})
        return 0

    async def execute(runtime: WorkerRuntime) -> Any:
        return await job(runtime, now)

    outcome = run(execute)
    _print({"job": name, "result": getattr(outcome, "deleted", outcome)})
    return 0


def queue_depths() -> int:
    async def collect(runtime: WorkerRuntime) -> dict[str, Any]:
        from redis.asyncio import Redis

        broker = Redis.from_url(runtime.settings.celery_broker_url)
        try:
            depths = {queue: int(await broker.llen(queue)) for queue in Queue.ALL}
            unacked = int(await broker.hlen("unacked"))
        finally:
            await broker.aclose()
        async with runtime.session_factory() as session:
            outbox = (await session.execute(select(func.count(OutboxJob.id)))).scalar_one()
        return {"queues": depths, "unacknowledged": unacked, "outbox_pending": outbox}

    _print(run(collect))
    return 0


def create_user(email: str, name: str, password: str | None, *, verified: bool) -> int:
    password = password or getpass.getpass("Password: ")
    problem = password_problems(password)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2

    async def insert(runtime: WorkerRuntime) -> User:
        hasher = PasswordHasher(runtime.settings.bcrypt_rounds, 1)
        try:
            password_hash = await hasher.hash(password)
        finally:
            hasher.shutdown()
        user = User(
            email=email.lower(),
            password_hash=password_hash,
            full_name=name,
            email_verified_at=datetime.now(UTC) if verified else None,
        )
        async with runtime.session_factory() as session:
            session.add(user)
            await session.commit()
        return user

    try:
        user = run(insert)
    except IntegrityError:
        print(f"error: an account with {email} already exists", file=sys.stderr)
        return 1
    _print({"id": user.id, "email": user.email, "verified": verified})
    return 0


def check() -> int:
    async def probe(runtime: WorkerRuntime) -> dict[str, str]:
        results: dict[str, str] = {}
        try:
            async with runtime.engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
            results["database"] = "ok"
        except Exception as exc:  # report every failure by name
            results["database"] = f"unavailable: {exc!r}"
        try:
            await runtime.redis.ping()
            results["redis"] = "ok"
        except Exception as exc:
            results["redis"] = f"unavailable: {exc!r}"
        try:
            _, writer = await asyncio.wait_for(
                asyncio.open_connection(runtime.settings.smtp_host, runtime.settings.smtp_port), 3
            )
            writer.close()
            results["smtp"] = "ok"
        except Exception as exc:
            results["smtp"] = f"unavailable: {exc!r}"
        return results

    results = run(probe)
    _print(results)
    return 0 if all(value == "ok" for value in results.values()) else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="taskpipe", description="Taskpipe operations")
    commands = parser.add_subparsers(dest="command", required=True)

    jobs = commands.add_parser("jobs", help="run a background job now").add_subparsers(
        dest="action", required=True
    )
    run_parser = jobs.add_parser("run", help="run one job in this process (or enqueue it)")
    run_parser.add_argument("job", choices=sorted(JOBS))
    run_parser.add_argument("--now", type=datetime.fromisoformat, help="ISO instant to run as")
    run_parser.add_argument("--enqueue", action="store_true", help="send to the workers instead")
    jobs.add_parser("list", help="list the jobs")

    commands.add_parser("queues", help="queue depths, unacknowledged jobs, outbox backlog")
    commands.add_parser("check", help="can this process reach PostgreSQL, Redis and SMTP?")

    users = commands.add_parser("users", help="manage accounts").add_subparsers(
        dest="action", required=True
    )
    create = users.add_parser("create", help="create an account")
    create.add_argument("--email", required=True)
    create.add_argument("--name", required=True)
    create.add_argument("--password", help="prompted for when omitted")
    create.add_argument("--verified", action="store_true", help="mark the email verified")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "jobs" and args.action == "list":
        _print({name: task for name, (task, _) in JOBS.items()})
        return 0
    if args.command == "jobs":
        now = args.now or datetime.now(UTC)
        if now.tzinfo is None:
            now = now.replace(tzinfo=UTC)
        return run_job(args.job, now, enqueue=args.enqueue)
    if args.command == "queues":
        return queue_depths()
    if args.command == "check":
        return check()
    return create_user(args.email, args.name, args.password, verified=args.verified)


if __name__ == "__main__":
    sys.exit(main())
