"""What the drills share: a private redis-server, a real API server process, a bounded client
loop that counts every answer, and the figures each drill reports."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from devstack.embedded import redis_server_binary
from devstack.machine import free_port
from tests.support.factories import PASSWORD
from tests.support.worker import ROOT

REPORT = ROOT / ".taskpipe" / "drills.jsonl"
# Keeps the drill processes working after the security branch tightens the defaults.
DRILL_ENV = {
    "TASKPIPE_ENV": "test",
    "TASKPIPE_JWT_SECRET": "drill-secret-0123456789abcdef0123456789abcdef",
    "TASKPIPE_REGISTER_RATE_LIMIT": "100000",
    "TASKPIPE_LOGIN_RATE_LIMIT": "100000",
    "TASKPIPE_EMAIL_RATE_LIMIT": "100000",
    "TASKPIPE_USER_RATE_LIMIT": "100000",
}
_emails = itertools.count(1)


def report(drill: str, **figures: Any) -> None:
    """One line of figures per drill, printed at the end of `make test-drills`."""
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    with REPORT.open("a") as out:
        out.write(json.dumps({"drill": drill, **figures}, default=str) + "\n")


class PrivateRedis:
    """A redis-server of the drill's own, without persistence like ours: killing it loses
    every key and every queued message. Never the machine's Redis."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                redis_server_binary(),
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with __import__("socket").create_connection(("127.0.0.1", self.port), 0.2):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("private redis-server did not start")

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)


class ApiServer:
    """`python -m api.server` as deployed, in its own process."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = env
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "api.server", "--host", "127.0.0.1", "--port", str(self.port)],
            cwd=ROOT,
            env={**os.environ, **DRILL_ENV, **self.env},
            stdout=self.log_path.open("ab"),
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"API server did not start:\n{self.log_path.read_text()[-2000:]}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()


@dataclass
class Ledger:
    """Everything the client loop was told: answers by status, and the writes acknowledged."""

    statuses: Counter[int] = field(default_factory=Counter)
    retry_after_missing: int = 0
    created: dict[str, str] = field(default_factory=dict)  # task id -> title
    idempotency_keys: dict[str, str] = field(default_factory=dict)  # key -> task id
    updated: dict[str, int] = field(default_factory=dict)  # task id -> version acknowledged
    registered: list[str] = field(default_factory=list)  # addresses acknowledged

    @property
    def requests(self) -> int:
        return sum(self.statuses.values())

    def failed_by_status(self) -> dict[str, int]:
        return {str(s): n for s, n in sorted(self.statuses.items()) if s >= 400 or s == 0}


async def _call(
    http: httpx.AsyncClient, ledger: Ledger, method: str, url: str, **kwargs: Any
) -> httpx.Response | None:
    try:
        response = await http.request(method, url, **kwargs)
    except httpx.TransportError:
        ledger.statuses[0] += 1
        return None
    ledger.statuses[response.status_code] += 1
    if response.status_code == 503 and "Retry-After" not in response.headers:
        ledger.retry_after_missing += 1
    return response


async def register_user(http: httpx.AsyncClient, ledger: Ledger) -> dict[str, str] | None:
    email = f"drill{next(_emails)}-{uuid.uuid4().hex[:6]}@example.com"
    response = await _call(
        http,
        ledger,
        "POST",
        "/api/v1/auth/register",
        json={"email": email, "password": PASSWORD, "full_name": "Drill"},
    )
    if response is None or response.status_code != 201:
        return None
    ledger.registered.append(email)
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


async def client_loop(
    base_url: str, ledger: Ledger, stop: asyncio.Event, *, register_every: int = 10
) -> None:
    """One client: create (with an Idempotency-Key, retried on 503 with the same key),
    update, read and list; now and then a registration (a verification mail)."""
    async with httpx.AsyncClient(base_url=base_url, timeout=10) as http:
        headers = None
        while headers is None and not stop.is_set():
            headers = await register_user(http, ledger)
            if headers is None:
                await asyncio.sleep(0.5)
        for round_ in itertools.count():
            if stop.is_set() or headers is None:
                return
            if round_ % register_every == register_every - 1:
                await register_user(http, ledger)
            key = uuid.uuid4().hex
            title = f"Drill task {key[:8]}"
            for _ in range(20):
                created = await _call(
                    http,
                    ledger,
                    "POST",
                    "/api/v1/tasks",
                    json={"title": title},
                    headers={**headers, "Idempotency-Key": key},
                )
                if created is not None and created.status_code == 201:
                    task = created.json()
                    ledger.created[task["id"]] = title
                    ledger.idempotency_keys[key] = task["id"]
                    break
                await asyncio.sleep(0.2)
            else:
                continue
            updated = await _call(
                http,
                ledger,
                "PATCH",
                f"/api/v1/tasks/{task['id']}",
                json={"version": 1, "status": "in_progress"},
                headers=headers,
            )
            if updated is not None and updated.status_code == 200:
                ledger.updated[task["id"]] = updated.json()["version"]
            await _call(http, ledger, "GET", f"/api/v1/tasks/{task['id']}", headers=headers)
            await _call(http, ledger, "GET", "/api/v1/tasks?limit=5", headers=headers)


async def verify_writes(database_url: str, ledger: Ledger) -> dict[str, int]:
    """Every acknowledged create is there once per key, every acknowledged update holds."""
    import asyncpg

    connection = await asyncpg.connect(database_url.replace("postgresql+asyncpg", "postgresql"))
    try:
        rows = await connection.fetch(
            "SELECT id::text, title, version FROM tasks WHERE id::text = ANY($1::text[])",
            list(ledger.created),
        )
        titles = {}
        for row in rows:
            titles[row["id"]] = row["title"]
        versions = {row["id"]: row["version"] for row in rows}
        doubled = await connection.fetchval(
            "SELECT count(*) - count(DISTINCT title) FROM tasks WHERE title LIKE 'Drill task %'"
        )
    finally:
        await connection.close()
    lost_creates = sum(
        1 for task_id, title in ledger.created.items() if titles.get(task_id) != title
    )
    lost_updates = sum(1 for task_id, v in ledger.updated.items() if versions.get(task_id, 0) < v)
    return {"lost_creates": lost_creates, "lost_updates": lost_updates, "doubled_creates": doubled}


def mails_by_address(messages: list[Any], addresses: list[str]) -> dict[str, int]:
    counts = Counter(message["To"] for message in messages)
    return {address: counts.get(address, 0) for address in addresses}


async def wait_for_mails(catcher: Any, addresses: list[str], timeout: float) -> float:
    """Seconds until every address had its mail (or the timeout)."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        counts = mails_by_address(list(catcher.messages), addresses)
        if all(counts.values()):
            return time.monotonic() - started
        await asyncio.sleep(0.2)
    return time.monotonic() - started
