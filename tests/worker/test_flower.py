"""Flower as `python -m worker.flower` runs it: every page, /metrics included, behind basic auth.

Flower itself leaves /metrics (worker and task names, counts, queue figures) open even when
basic auth is on; only /healthcheck, which says "OK", stays open here.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from devstack.machine import free_port
from tests.support.api_server import wait_until_ok

ROOT = Path(__file__).resolve().parents[2]
USER, PASSWORD = "ops", "flower-test-password-1"


@pytest.fixture(scope="module")
def flower(database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    log = (tmp_path_factory.mktemp("flower") / "flower.log").open("wb")
    env = {
        **os.environ,
        "TASKPIPE_FLOWER_PORT": str(port),
        "TASKPIPE_FLOWER_USER": USER,
        "TASKPIPE_FLOWER_PASSWORD": PASSWORD,
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "worker.flower"], cwd=ROOT, env=env, stdout=log, stderr=log
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_ok(f"{base}/healthcheck", process)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


@pytest.mark.parametrize("auth", [None, (USER, "wrong-password"), ("someone", PASSWORD)])
def test_flower_metrics_need_the_credentials(flower: str, auth: tuple[str, str] | None) -> None:
    response = httpx.get(f"{flower}/metrics", auth=auth)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Basic realm="flower"'
    assert "flower_" not in response.text


def test_flower_metrics_answer_with_the_credentials(flower: str) -> None:
    response = httpx.get(f"{flower}/metrics", auth=(USER, PASSWORD))
    assert response.status_code == 200
    assert "flower_" in response.text


def test_flower_pages_need_them_and_the_health_check_does_not(flower: str) -> None:
    assert httpx.get(f"{flower}/workers").status_code == 401
    assert httpx.get(f"{flower}/healthcheck").text == "OK"
