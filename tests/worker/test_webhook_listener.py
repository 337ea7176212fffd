"""`taskpipe webhooks listen`, the development receiver, run as the command a user runs."""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from common.webhooks.signing import generate_secret, webhook_headers
from devstack.machine import free_port
from worker.cli import main
from worker.webhook_listener import WebhookListener

ROOT = Path(__file__).resolve().parents[2]
BODY = json.dumps({"type": "task.completed", "data": {"id": "42", "title": "Ship it"}}).encode()


@pytest.fixture
def secret() -> str:
    return generate_secret()


@pytest.fixture
def listener(secret: str) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "worker.cli",
            "webhooks",
            "listen",
            "--port",
            str(port),
            "--secret",
            secret,
        ],
        cwd=ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    assert "listening on" in process.stdout.readline()
    yield f"http://127.0.0.1:{port}/", process
    process.send_signal(signal.SIGINT)  # Ctrl-C stops it, cleanly
    assert process.wait(10) == 0


def _read_block(process: subprocess.Popen[str]) -> str:
    """One printed delivery: lines up to the blank one that ends it."""
    assert process.stdout is not None
    lines = []
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if line == "\n":
            return "".join(lines)
        lines.append(line)
    raise AssertionError(f"no delivery printed: {lines}")


def test_the_listener_prints_verified_events_and_rejects_forged_ones(
    listener: tuple[str, subprocess.Popen[str]], secret: str
) -> None:
    url, process = listener
    headers = webhook_headers(msg_id="msg_1", body=BODY, secrets=[secret])
    response = httpx.post(url, content=BODY, headers=headers)
    assert response.status_code == 200
    printed = _read_block(process)
    assert "task.completed msg_1: signature verified" in printed
    assert '"title": "Ship it"' in printed

    forged = webhook_headers(msg_id="msg_2", body=BODY, secrets=[generate_secret()])
    assert httpx.post(url, content=BODY, headers=forged).status_code == 401
    assert "msg_2: SIGNATURE REJECTED" in _read_block(process)
    assert httpx.post(url, content=b"not json", headers=forged).status_code == 401
    assert "(not a JSON event)" in _read_block(process)


def test_a_malformed_secret_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["webhooks", "listen", "--port", str(free_port()), "--secret", "nope"]) == 2
    assert "whsec_" in capsys.readouterr().err


def test_without_a_secret_every_delivery_is_printed_unverified() -> None:
    out = io.StringIO()
    server = WebhookListener("127.0.0.1", free_port(), secret=None, out=out)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/"
        assert httpx.post(url, content=BODY, headers={"webhook-id": "msg_3"}).status_code == 200
        # A body announced larger than 1 MiB is refused before it is read.
        with socket.create_connection(server.server_address[:2], timeout=5) as raw:
            raw.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2097152\r\n\r\n")
            assert raw.recv(100).startswith(b"HTTP/1.0 413")
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
    assert "task.completed msg_3: not verified (no --secret given)" in out.getvalue()
