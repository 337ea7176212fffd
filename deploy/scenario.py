"""The smoke scenario, through published ports only: what a new user and an operator do first."""

from __future__ import annotations

import subprocess
import time
import uuid
from dataclasses import dataclass

import httpx
from prometheus_client.parser import text_string_to_metric_families

from deploy.client import expect
from deploy.engine import SmokeFailure
from deploy.mailbox import verification_link
from deploy.stack import Stack

PASSWORD = "Correct-Horse-9"
VERIFICATION_JOB = "taskpipe.email.send_verification"
JOB_TIMEOUT_SECONDS = 90.0
# What /metrics must carry once a user registered and verified: the API's own metrics, the
# workers' totals and heartbeats (from Redis), the broker queues and the outbox (read per scrape).
EXPECTED_SAMPLES: tuple[tuple[str, dict[str, str]], ...] = (
    ("taskpipe_http_requests_total", {"route": "/api/v1/auth/register", "status": "201"}),
    ("taskpipe_mails_total", {"kind": "verify_email"}),
    ("taskpipe_jobs_succeeded_total", {"task": VERIFICATION_JOB}),
    ("taskpipe_heartbeat_timestamp_seconds", {"component": "worker"}),
    ("taskpipe_heartbeat_timestamp_seconds", {"component": "beat"}),
    ("taskpipe_queue_depth", {"queue": "email"}),
    ("taskpipe_outbox_overdue_jobs", {}),
    ("taskpipe_db_pool_connections_max", {}),
)


@dataclass
class User:
    email: str
    access_token: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}


def new_email(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}@example.com"


def register(api: httpx.Client, email: str) -> httpx.Response:
    return api.post(
        "/api/v1/auth/register",
        json={"email": email, "password": PASSWORD, "full_name": "Smoke Test"},
    )


def ready(stack: Stack) -> None:
    body = expect(stack.api.get("/ready"), 200, "readiness").json()
    if body.get("status") != "ready":
        raise SmokeFailure(f"/ready says {body}")


def verification_job_succeeds(stack: Stack) -> str:
    """Flower's API (behind its basic auth) shows the verification job reach SUCCESS."""
    refused = httpx.get(stack.flower.base_url.join("/api/tasks"), timeout=10)
    expect(refused, 401, "Flower without credentials")
    deadline = time.monotonic() + JOB_TIMEOUT_SECONDS
    states: list[str] = []
    while time.monotonic() < deadline:
        tasks = expect(
            stack.flower.get("/api/tasks", params={"taskname": VERIFICATION_JOB}), 200, "Flower"
        ).json()
        states = [task["state"] for task in tasks.values()]
        if "SUCCESS" in states:
            return str(next(tid for tid, task in tasks.items() if task["state"] == "SUCCESS"))
        time.sleep(0.5)
    raise SmokeFailure(f"{VERIFICATION_JOB} did not reach SUCCESS (states seen: {states})")


def verify_by_mail(stack: Stack, email: str) -> None:
    """Follow the link the worker put in the mail, as the user would."""
    link = verification_link(stack.mailbox.wait_for(email, timeout=JOB_TIMEOUT_SECONDS))
    if not link.startswith(str(stack.api.base_url).rstrip("/")):
        raise SmokeFailure(f"the mail links to {link}, not to the API's public URL")
    verified = expect(stack.api.get(link), 200, "verification link").json()
    if verified.get("is_active") is not True:
        raise SmokeFailure(f"verified account is not active: {verified}")


def log_in(stack: Stack, email: str) -> User:
    tokens = expect(
        stack.api.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD}),
        200,
        "login",
    ).json()
    return User(email=email, access_token=tokens["access_token"])


def task_round_trip(stack: Stack, user: User) -> None:
    """Create, list, PATCH and delete one task."""
    api = stack.api
    created = expect(
        api.post(
            "/api/v1/tasks",
            json={"title": "Smoke the stack", "priority": "high"},
            headers={**user.auth, "Idempotency-Key": uuid.uuid4().hex},
        ),
        201,
        "create task",
    ).json()
    task_path = f"/api/v1/tasks/{created['id']}"
    listed = expect(api.get("/api/v1/tasks", headers=user.auth), 200, "list tasks").json()
    if created["id"] not in {item["id"] for item in listed["items"]}:
        raise SmokeFailure("the created task is not in the list")
    patched = expect(
        api.patch(
            task_path,
            json={"status": "in_progress", "version": created["version"]},
            headers=user.auth,
        ),
        200,
        "PATCH task",
    ).json()
    if (patched["status"], patched["version"]) != ("in_progress", created["version"] + 1):
        raise SmokeFailure(f"PATCH answered {patched}")
    expect(api.delete(task_path, headers=user.auth), 204, "delete task")
    expect(api.get(task_path, headers=user.auth), 404, "deleted task")


def scrape_metrics(stack: Stack) -> dict[str, list[tuple[dict[str, str], float]]]:
    """GET /metrics as Prometheus does (with the metrics token); samples by family name."""
    response = expect(
        stack.api.get("/metrics", headers={"Authorization": f"Bearer {stack.metrics_token}"}),
        200,
        "/metrics with the token",
    )
    families: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            families.setdefault(sample.name, []).append((sample.labels, sample.value))
    return families


def metrics_cover_the_platform(stack: Stack) -> None:
    samples = scrape_metrics(stack)
    missing = [
        f"{name}{labels}"
        for name, labels in EXPECTED_SAMPLES
        if not any(labels.items() <= found.items() for found, _ in samples.get(name, []))
    ]
    if missing:
        raise SmokeFailure(f"/metrics lacks {missing}")


def root_filesystem_is_read_only(stack: Stack) -> None:
    """Every Taskpipe container sees its root filesystem mounted read-only, as in Kubernetes."""
    check = "import os, sys; sys.exit(0 if os.statvfs('/').f_flag & os.ST_RDONLY else 1)"
    for service in ("api", "worker", "beat", "flower"):
        probe = subprocess.run(
            stack.project.argv("exec", "-T", service, "python", "-c", check),
            env=stack.project.env,
            capture_output=True,
            timeout=60,
            check=False,
        )
        if probe.returncode != 0:
            raise SmokeFailure(f"{service}: the root filesystem is writable")
