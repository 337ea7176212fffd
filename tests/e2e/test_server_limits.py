"""Request heads have limits in the server we ship (`python -m api.server`).

uvicorn's httptools parser buffers a header of any size: a 64 MB header used to be read whole
and answered 200 after seconds, stalling every other client meanwhile. Now the server answers
431 and closes once the head passes 16 KiB, or 100 fields, while the rest is still on its way.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import pytest

from api.server import MAX_HEAD_BYTES, MAX_HEADERS
from tests.support.api_server import api_server

CHUNK = 64 * 1024
HUGE = 64 * 1024 * 1024


@pytest.fixture(scope="module")
def server(database: str) -> Iterator[tuple[str, int]]:
    with api_server(ready_path="/health") as base_url:
        parts = urlsplit(base_url)
        assert parts.hostname is not None and parts.port is not None
        yield parts.hostname, parts.port


def _read_answer(connection: socket.socket) -> bytes:
    """One whole answer: its head, then as many bytes as its Content-Length says."""
    received = b""
    while b"\r\n\r\n" not in received:
        chunk = connection.recv(65536)
        if not chunk:
            return received
        received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.lower().split(b"\r\n")
        if line.startswith(b"content-length:")
    )
    while len(body) < length:
        body += connection.recv(65536)
    return head + b"\r\n\r\n" + body


def _exchange(server: tuple[str, int], request: bytes) -> bytes:
    with socket.create_connection(server, timeout=10) as connection:
        connection.sendall(request)
        return _read_answer(connection)


def _get(headers: str = "", path: str = "/health") -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: test\r\n{headers}Connection: close\r\n\r\n".encode()


def test_a_64_mb_header_is_refused_early_while_others_are_served(
    server: tuple[str, int],
) -> None:
    sent = 0
    answer = b""

    def send_huge_header() -> None:
        nonlocal sent, answer
        with socket.create_connection(server, timeout=10) as connection:
            connection.sendall(b"GET /health HTTP/1.1\r\nHost: test\r\nX-Huge: ")
            try:
                while sent < HUGE:
                    connection.sendall(b"a" * CHUNK)
                    sent += CHUNK
            except OSError:  # the server closed the connection on us
                pass
            try:
                answer = connection.recv(65536)
            except OSError:
                answer = b"<reset>"

    attacker = threading.Thread(target=send_huge_header)
    attacker.start()
    base = f"http://{server[0]}:{server[1]}"
    latencies = []
    with httpx.Client(base_url=base) as bystander:
        while True:  # at least once, and for as long as the attack goes on
            started = time.perf_counter()
            assert bystander.get("/health").status_code == 200
            latencies.append(time.perf_counter() - started)
            if not attacker.is_alive():
                break
    attacker.join()
    # Refused long before the header ended (what was sent includes the kernel's buffers).
    assert sent < HUGE // 8, f"{sent} bytes of one header were taken"
    assert answer.startswith(b"HTTP/1.1 431") or answer in (b"", b"<reset>"), answer[:200]
    assert max(latencies) < 1.0, latencies


def test_a_head_over_the_limit_in_one_piece_gets_431(server: tuple[str, int]) -> None:
    answer = _exchange(server, _get(f"X-Big: {'a' * MAX_HEAD_BYTES}\r\n"))
    assert answer.startswith(b"HTTP/1.1 431 Request Header Fields Too Large")
    assert b"application/problem+json" in answer
    assert b"request-header-fields-too-large" in answer


def test_too_many_header_fields_get_431(server: tuple[str, int]) -> None:
    fields = "".join(f"X-Field-{index}: {index}\r\n" for index in range(MAX_HEADERS + 1))
    assert _exchange(server, _get(fields)).startswith(b"HTTP/1.1 431")


def test_a_long_url_counts_towards_the_head(server: tuple[str, int]) -> None:
    path = "/health?" + "q" * MAX_HEAD_BYTES
    assert _exchange(server, _get(path=path)).startswith(b"HTTP/1.1 431")


def test_heads_within_the_limits_are_served_also_on_a_kept_alive_connection(
    server: tuple[str, int],
) -> None:
    big = f"X-Big: {'a' * (MAX_HEAD_BYTES - 1024)}\r\n"
    many = "".join(f"X-Field-{index}: {index}\r\n" for index in range(MAX_HEADERS - 5))
    with socket.create_connection(server, timeout=10) as connection:
        for headers in (big, many, big):
            connection.sendall(f"GET /health HTTP/1.1\r\nHost: test\r\n{headers}\r\n".encode())
            answer = _read_answer(connection)
            assert answer.startswith(b"HTTP/1.1 200"), answer[:200]
            assert answer.endswith(b'{"status":"ok"}')
