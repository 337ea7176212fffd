"""What the `taskpipe` commands do (`worker.cli` parses, finds the servers, reports failures).

Imported only once the environment is settled: importing the Celery app reads the settings.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import make_url

from common.config import Settings
from common.db.outbox import outbox_state
from common.jobs import JobName, Queue
from common.maintenance.outbox import relay_outbox
from common.security.passwords import PasswordHasher, password_problems
from common.users.errors import EmailAlreadyRegistered
from common.users.service import UserService
from worker.app import app
from worker.runtime import WorkerRuntime, run
from worker.tasks.cache import warm_active
from worker.tasks.maintenance import purge
from worker.tasks.reminders import scan

JOBS: dict[str, tuple[str, Callable[[WorkerRuntime, datetime], Any]]] = {
    "purge": (JobName.PURGE_DELETED, lambda rt, now: purge(rt, now)),
    "reminders": (JobName.SCAN_DUE_REMINDERS, lambda rt, now: scan(rt, now)),
    "relay": (JobName.RELAY_OUTBOX, lambda rt, now: relay_outbox(rt.session_factory, rt.publisher)),
    "warm": (JobName.WARM_ACTIVE_USERS, lambda rt, now: warm_active(rt, now)),
}


class DuplicateAccount(Exception):
    """An account with this email exists already."""


class WeakPassword(Exception):
    """The password breaks the rules every account's password follows."""


def print_json(data: object) -> None:
    print(json.dumps(data, indent=2, default=str))


def list_jobs() -> dict[str, str]:
    return {name: task for name, (task, _) in JOBS.items()}


def run_job(name: str, now: datetime, *, enqueue: bool) -> dict[str, Any]:
    task_name, job = JOBS[name]
    if enqueue:
        kwargs = {} if name == "relay" else {"now": now.isoformat()}
        result = app.send_task(task_name, kwargs=kwargs)
        return {"job": name, "enqueued": result.id}

    async def execute(runtime: WorkerRuntime) -> Any:
        return await job(runtime, now)

    return {"job": name, "result": run(execute)}


def queue_depths() -> dict[str, Any]:
    async def collect(runtime: WorkerRuntime) -> dict[str, Any]:
        from redis.asyncio import Redis

        broker = Redis.from_url(runtime.settings.celery_broker_url)
        try:
            depths = {queue: int(await broker.llen(queue)) for queue in Queue.ALL}
            unacked = int(await broker.hlen("unacked"))
        finally:
            await broker.aclose()
        async with runtime.session_factory() as session:
            outbox = await outbox_state(session)
        return {"queues": depths, "unacknowledged": unacked, "outbox": asdict(outbox)}

    return run(collect)


def create_user(email: str, name: str, password: str, *, verified: bool) -> dict[str, Any]:
    problem = password_problems(password)
    if problem:
        raise WeakPassword(problem)

    async def insert(runtime: WorkerRuntime) -> dict[str, Any]:
        settings = runtime.settings
        hasher = PasswordHasher(
            settings.password_hash_memory_kib, settings.password_hash_iterations, 1
        )
        try:
            password_hash = await hasher.hash(password)
        finally:
            hasher.shutdown()
        async with runtime.unit_of_work() as uow:
            user = await UserService(uow).create(
                email=email,
                full_name=name,
                password_hash=password_hash,
                verified_at=datetime.now(UTC) if verified else None,
            )
        return {"id": user.id, "email": user.email, "verified": verified}

    try:
        return run(insert)
    except EmailAlreadyRegistered as exc:
        raise DuplicateAccount(f"an account with {email} already exists") from exc


def connect_commands(settings: Settings) -> dict[str, str]:
    """psql and redis-cli command lines for the configured servers (passwords left out)."""
    database = make_url(settings.database_url).set(drivername="postgresql", password=None)
    redis = re.sub(r"//[^@/]*@", "//", settings.redis_url)
    return {
        "psql": f"psql {database.render_as_string(hide_password=False)}",
        "redis-cli": f"redis-cli -u {redis}",
    }


def check() -> dict[str, str]:
    """Whether this process reaches PostgreSQL, Redis and SMTP; each failure in one line."""

    async def probe(runtime: WorkerRuntime) -> dict[str, str]:
        results: dict[str, str] = {}
        try:
            async with runtime.engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
            results["database"] = "ok"
        except Exception as exc:  # report every failure by name
            results["database"] = f"unavailable: {reason(exc)}"
        try:
            await runtime.redis.ping()
            results["redis"] = "ok"
        except Exception as exc:
            results["redis"] = f"unavailable: {reason(exc)}"
        settings = runtime.settings
        try:
            _, writer = await asyncio.wait_for(
                asyncio.open_connection(settings.smtp_host, settings.smtp_port), 3
            )
            writer.close()
            results["smtp"] = "ok"
        except Exception as exc:
            where = f"{settings.smtp_host}:{settings.smtp_port}"
            results["smtp"] = f"unavailable: {reason(exc)} ({where})"
        return results

    return run(probe)


def reason(exc: BaseException) -> str:
    """An exception in a few words: its message, else its type."""
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return message or type(exc).__name__
