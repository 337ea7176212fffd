"""Servers in subprocesses: the API as production runs it (`python -m api.server`)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx

from devstack.machine import free_port
from tests.support.worker import ROOT


def wait_until_ok(url: str, process: subprocess.Popen[bytes], timeout: float = 30) -> None:
    """Poll `url` until it answers 200; fail if `process` exits or `timeout` passes first."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{url} did not answer 200 (exit status {process.poll()})")
        time.sleep(0.1)


@contextmanager
def api_server(ready_path: str = "/ready", *, own_public_url: bool = False) -> Iterator[str]:
    """Start the server, wait until `ready_path` answers 200, yield its base URL, stop it.
    `own_public_url`: the links it builds point at itself (not the tests' `testserver`)."""
    port = free_port()
    env = dict(os.environ)
    if own_public_url:
        env["TASKPIPE_PUBLIC_URL"] = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(
        [sys.executable, "-m", "api.server", "--host", "127.0.0.1", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_until_ok(f"{base_url}{ready_path}", process)
        yield base_url
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
