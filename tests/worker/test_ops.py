"""What operators and probes rely on: heartbeats, the liveness check, Flower behind auth."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from common.config import get_settings
from devstack.machine import free_port
from tests.support.worker import ROOT, WorkerProcess
from worker.healthcheck import is_alive, main
from worker.heartbeat import heartbeat_path

pytestmark = pytest.mark.worker


def test_healthcheck_reads_the_heartbeat_age() -> None:
    path = heartbeat_path("beat")
    path.unlink(missing_ok=True)
    assert main(["beat"]) == 1  # missing
    path.touch()
    assert main(["beat"]) == 0
    stale = time.time() - 600
    os.utime(path, (stale, stale))
    assert not is_alive("beat")
    assert main(["beat"]) == 1
    assert main(["nonsense"]) == 2
    assert main([]) == 2


def test_a_running_worker_keeps_its_heartbeat_fresh(celery_worker: WorkerProcess) -> None:
    assert is_alive("worker")


def _wait_until(predicate, timeout: float) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


def test_beat_writes_its_heartbeat(tmp_path: Path, database: str) -> None:
    path = heartbeat_path("beat")
    path.unlink(missing_ok=True)
    process = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "worker.app", "beat", "--loglevel", "WARNING"],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert _wait_until(path.exists, 30)
        assert is_alive("beat")
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(15)


@pytest.fixture
def flower(database: str) -> Iterator[str]:
    port = free_port()
    env = {
        **os.environ,
        "TASKPIPE_FLOWER_PORT": str(port),
        "TASKPIPE_FLOWER_PASSWORD": "s3cret-flower",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "worker.flower"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        try:
            httpx.get(f"{url}/healthcheck", timeout=1)
        except httpx.TransportError:
            return False
        return True

    try:
        assert _wait_until(answers, 40), "flower did not start"
        yield url
    finally:
        process.terminate()
        process.wait(15)


def test_flower_requires_basic_auth_and_serves_metrics(flower: str) -> None:
    user = get_settings().flower_user
    assert httpx.get(f"{flower}/", timeout=5).status_code == 401
    assert httpx.get(f"{flower}/", auth=(user, "wrong"), timeout=5).status_code == 401
    assert httpx.get(f"{flower}/", auth=(user, "s3cret-flower"), timeout=5).status_code == 200
    metrics = httpx.get(f"{flower}/metrics", auth=(user, "s3cret-flower"), timeout=5)
    assert metrics.status_code == 200
    assert "flower_" in metrics.text
