"""The request-head limits of `api.server`, fed byte by byte as a network would deliver them.

`tests/e2e/test_server_limits.py` proves them against a real server process; here the edges
are cheap to reach: heads split across reads, pipelined requests, a body in the same read.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.config import Config
from uvicorn.server import ServerState

from api.server import MAX_HEAD_BYTES, MAX_HEADERS, BoundedHttpToolsProtocol


class Transport:
    """What the protocol writes, and whether it closed the connection."""

    def __init__(self) -> None:
        self.written = b""
        self.closed = False

    def get_extra_info(self, name: str) -> Any:
        return {"sockname": ("127.0.0.1", 8000), "peername": ("127.0.0.1", 40000)}.get(name)

    def write(self, data: bytes) -> None:
        self.written += data

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def pause_reading(self) -> None: ...

    def resume_reading(self) -> None: ...


async def _ok(scope: Any, receive: Any, send: Any) -> None:
    while (await receive()).get("more_body"):
        pass
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


async def _serve(*reads: bytes) -> Transport:
    config = Config(app=_ok, lifespan="off", log_level="critical")
    config.load()
    protocol = BoundedHttpToolsProtocol(config, ServerState(), app_state={})
    transport = Transport()
    protocol.connection_made(transport)  # type: ignore[arg-type]
    for data in reads:
        if transport.closed:
            break
        protocol.data_received(data)
        await asyncio.sleep(0.01)  # let the app answer
    return transport


def _head(extra: str = "", path: str = "/") -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: test\r\n{extra}\r\n".encode()


async def test_a_head_within_the_limits_is_served_even_split_across_many_reads() -> None:
    head = _head(f"X-Big: {'a' * (MAX_HEAD_BYTES - 200)}\r\n")
    transport = await _serve(*(head[i : i + 1000] for i in range(0, len(head), 1000)))
    assert transport.written.startswith(b"HTTP/1.1 200")
    assert not transport.closed


async def test_a_head_still_arriving_past_the_limit_is_refused_before_it_ends() -> None:
    start = b"GET / HTTP/1.1\r\nHost: test\r\nX-Huge: "
    chunks = [start] + [b"a" * 4096] * 64  # 256 KiB and no end in sight
    transport = await _serve(*chunks)
    assert transport.written.startswith(b"HTTP/1.1 431")
    assert transport.closed


async def test_a_complete_head_over_the_limit_in_one_read_is_refused() -> None:
    transport = await _serve(_head(f"X-Big: {'a' * MAX_HEAD_BYTES}\r\n"))
    assert transport.written.startswith(b"HTTP/1.1 431")
    assert b"request-header-fields-too-large" in transport.written


async def test_too_many_fields_and_too_long_a_url_are_refused() -> None:
    fields = "".join(f"X-{index}: {index}\r\n" for index in range(MAX_HEADERS + 1))
    assert (await _serve(_head(fields))).written.startswith(b"HTTP/1.1 431")
    long_url = "/?" + "q" * MAX_HEAD_BYTES
    assert (await _serve(_head(path=long_url))).written.startswith(b"HTTP/1.1 431")


async def test_a_body_and_the_next_pipelined_head_in_one_read_are_not_counted_as_head() -> None:
    body = b"x" * (MAX_HEAD_BYTES * 2)
    post = b"POST / HTTP/1.1\r\nHost: test\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
    next_head = _head(f"X-Big: {'a' * (MAX_HEAD_BYTES - 200)}\r\n")
    transport = await _serve(post + next_head[:100], next_head[100:])
    assert transport.written.count(b"HTTP/1.1 200") == 2, transport.written
    assert b"431" not in transport.written


async def test_malformed_requests_still_get_uvicorns_400() -> None:
    transport = await _serve(b"NOT HTTP AT ALL\r\n\r\n")
    assert transport.written.startswith(b"HTTP/1.1 400")
