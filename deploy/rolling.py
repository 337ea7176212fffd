"""`docker compose restart api worker` under a short, bounded request loop.

Clients keep creating and reading tasks and new users keep registering while the API and the
worker restart. Passing means: no request failed beyond what a client retry absorbs (connection
refused while the API is down, 503 while it starts), every acknowledged create exists exactly
once afterwards (Idempotency-Key makes the retried creates safe), and every registration made
during the restart got its verification mail (no job lost).
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass, field
from functools import partial

from deploy.client import Attempted, expect, with_retries
from deploy.engine import SmokeFailure
from deploy.scenario import JOB_TIMEOUT_SECONDS, User, new_email, register
from deploy.stack import Stack

CLIENTS = 2
PAUSE_SECONDS = 0.1
REGISTRATIONS = 4
REGISTRATION_PAUSE_SECONDS = 1.5
LOAD_BEFORE_RESTART_SECONDS = 2.0
LOAD_AFTER_RESTART_SECONDS = 3.0


@dataclass
class LoadResult:
    requests: int = 0
    retried: int = 0
    failures: list[str] = field(default_factory=list)
    created: set[str] = field(default_factory=set)
    registered: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self, attempted: Attempted) -> None:
        with self.lock:
            self.requests += 1
            self.retried += attempted.attempts > 1

    def fail(self, why: str) -> None:
        with self.lock:
            self.failures.append(why)


def _client_loop(stack: Stack, user: User, result: LoadResult, stop: threading.Event) -> None:
    while not stop.is_set():
        key = uuid.uuid4().hex
        try:
            created = with_retries(
                partial(
                    stack.api.post,
                    "/api/v1/tasks",
                    json={"title": f"rolling {key[:8]}"},
                    headers={**user.auth, "Idempotency-Key": key},
                )
            )
            result.count(created)
            task = expect(created.response, 201, "create during the restart").json()
            with result.lock:
                result.created.add(task["id"])
            listed = with_retries(
                lambda: stack.api.get("/api/v1/tasks", params={"limit": 5}, headers=user.auth)
            )
            result.count(listed)
            expect(listed.response, 200, "list during the restart")
        except SmokeFailure as exc:
            result.fail(str(exc))
        time.sleep(PAUSE_SECONDS)


def _registration_loop(stack: Stack, result: LoadResult) -> None:
    """A new user every REGISTRATION_PAUSE_SECONDS, spanning the restart (all of them, always)."""
    for _ in range(REGISTRATIONS):
        email = new_email("rolling")
        try:
            attempted = with_retries(partial(register, stack.api, email))
            result.count(attempted)
            # 409 on a retry: the first try committed and only its answer was lost.
            if not (
                attempted.response.status_code == 201
                or (attempted.attempts > 1 and attempted.response.status_code == 409)
            ):
                expect(attempted.response, 201, "register during the restart")
            with result.lock:
                result.registered.append(email)
        except SmokeFailure as exc:
            result.fail(str(exc))
        time.sleep(REGISTRATION_PAUSE_SECONDS)


def restart_under_load(stack: Stack, user: User) -> LoadResult:
    result = LoadResult()
    stop = threading.Event()
    threads = [
        threading.Thread(target=_client_loop, args=(stack, user, result, stop), daemon=True)
        for _ in range(CLIENTS)
    ]
    threads.append(threading.Thread(target=_registration_loop, args=(stack, result), daemon=True))
    for thread in threads:
        thread.start()
    time.sleep(LOAD_BEFORE_RESTART_SECONDS)
    stack.project.run("restart", "api", "worker", step="restart api worker")
    expect(with_retries(lambda: stack.api.get("/ready")).response, 200, "ready after restart")
    time.sleep(LOAD_AFTER_RESTART_SECONDS)
    stop.set()
    for thread in threads:
        thread.join(60)
    _nothing_lost(stack, user, result)
    return result


def _nothing_lost(stack: Stack, user: User, result: LoadResult) -> None:
    if result.failures:
        raise SmokeFailure(
            f"{len(result.failures)} of {result.requests} requests failed beyond the client's "
            f"retries during the restart; first: {result.failures[0]}"
        )
    page = expect(
        stack.api.get("/api/v1/tasks", params={"limit": 1}, headers=user.auth), 200, "count tasks"
    ).json()
    if page["total"] != len(result.created):
        raise SmokeFailure(
            f"{len(result.created)} creates were acknowledged, the list holds {page['total']}"
        )
    for email in result.registered:
        stack.mailbox.wait_for(email, timeout=JOB_TIMEOUT_SECONDS)
    if len(result.registered) != REGISTRATIONS:
        raise SmokeFailure(f"only {len(result.registered)} of {REGISTRATIONS} registrations")
