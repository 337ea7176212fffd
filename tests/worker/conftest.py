"""Fixtures of the worker tests: a live webhook client; Flower as `python -m worker.flower` runs."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from api.resources import Resources
from devstack.machine import free_port
from tests.support.api_server import wait_until_ok
from tests.support.flower import FLOWER_PASSWORD, FLOWER_USER
from tests.support.webhooks import webhook_client

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
async def live_hooks(
    app: FastAPI, resources: Resources, committed_data: None
) -> AsyncIterator[httpx.AsyncClient]:
    """A client whose writes commit, with webhooks allowed to the loopback test receiver."""
    async with webhook_client(app, resources, webhook_allow_insecure=True) as client:
        yield client


@pytest.fixture(scope="module")
def flower(database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    log = (tmp_path_factory.mktemp("flower") / "flower.log").open("wb")
    env = {
        **os.environ,
        "TASKPIPE_FLOWER_PORT": str(port),
        "TASKPIPE_FLOWER_USER": FLOWER_USER,
        "TASKPIPE_FLOWER_PASSWORD": FLOWER_PASSWORD,
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
