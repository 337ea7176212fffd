"""Serve the API: `python -m api.server [--host H] [--port P] [--workers N] [--log-level L]`.

The one place that says how the API process runs (event loop, HTTP parser, proxy trust, graceful
shutdown, request head limits), so `make run`, the image, compose, Kubernetes, the tests and the
load tests all run the same server. Proxy headers are trusted only from `FORWARDED_ALLOW_IPS`
(uvicorn reads it itself; default 127.0.0.1). Worker processes: `--workers`, else
`WEB_CONCURRENCY`, else 1; more than one also needs `PROMETHEUS_MULTIPROC_DIR` so that /metrics
covers every process.

Request heads (request line and headers) are limited to `MAX_HEAD_BYTES` and `MAX_HEADERS`
fields: uvicorn's httptools parser has no limit of its own and buffers a header however large
(a 64 MB one was read and answered, stalling every other client for seconds). Past either
limit the server answers 431 and closes the connection as soon as it can tell, while the head
is still arriving.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

GRACEFUL_SHUTDOWN_SECONDS = 25
"""In-flight requests get this long after SIGTERM (k8s: below terminationGracePeriodSeconds)."""
MAX_HEAD_BYTES = 16 * 1024
"""Request line plus headers. A bearer token is under 1 KiB; nginx refuses a single header line
over 8 KiB by default, Node a head over 16 KiB."""
MAX_HEADERS = 100
_TOO_LARGE_BODY = (
    b'{"type":"urn:taskpipe:problem:request-header-fields-too-large",'
    b'"title":"Request header fields too large","status":431,'
    b'"detail":"Request heads are limited to %d bytes and %d header fields"}'
) % (MAX_HEAD_BYTES, MAX_HEADERS)
_TOO_LARGE = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
    b"content-type: application/problem+json\r\n"
    b"x-content-type-options: nosniff\r\n"
    b"connection: close\r\n"
    b"content-length: %d\r\n\r\n%s"
) % (len(_TOO_LARGE_BODY), _TOO_LARGE_BODY)


class _HeadTooLarge(Exception):
    """Raised from a parser callback: the parser stops, the connection gets a 431."""


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with limits on the request head.

    Exact checks run as the parser reports the URL and each header. The parser reports a header
    only once it is complete, so a head still arriving is measured too: every chunk after the
    one in which the request began, and after which the head is still not done, is head and
    nothing else; once those pass `MAX_HEAD_BYTES` the connection is refused without waiting
    for the rest (the parser holds at most two chunks more than the limit).
    """

    _head_bytes = 0
    _head_fields = 0
    _streamed_head_bytes = 0
    _reading_head = False
    _began_in_chunk = False
    _refused = False

    def data_received(self, data: bytes) -> None:
        self._began_in_chunk = False
        super().data_received(data)
        if self._refused or self.transport.is_closing():
            return
        if self._reading_head and not self._began_in_chunk:
            self._streamed_head_bytes += len(data)
            if self._streamed_head_bytes > MAX_HEAD_BYTES:
                self._refused = True
                self._write_refusal()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_bytes = self._head_fields = self._streamed_head_bytes = 0
        self._reading_head = self._began_in_chunk = True

    def on_url(self, url: bytes) -> None:
        self._count(len(url), fields=0)
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count(len(name) + len(value) + 4, fields=1)  # ": " and CRLF
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._reading_head = False
        super().on_headers_complete()

    def send_400_response(self, msg: str) -> None:
        if self._refused:  # the parser stopped because a callback refused the head
            self._write_refusal()
            return
        super().send_400_response(msg)

    def _count(self, size: int, *, fields: int) -> None:
        self._head_bytes += size
        self._head_fields += fields
        if self._head_bytes > MAX_HEAD_BYTES or self._head_fields > MAX_HEADERS:
            self._refused = True
            raise _HeadTooLarge

    def _write_refusal(self) -> None:
        self.logger.warning("Request head over the limits: 431")
        self.transport.write(_TOO_LARGE)
        self.transport.close()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m api.server", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--workers", type=int, default=int(os.environ.get("WEB_CONCURRENCY") or 1))
    parser.add_argument(
        "--keep-alive", type=int, default=5, help="seconds an idle connection stays open"
    )
    parser.add_argument("--log-level", default="info", help="uvicorn's own log level")
    return parser


def main(argv: Sequence[str] | None = None) -> None:  # pragma: no cover - runs until stopped
    args = build_parser().parse_args(argv)
    uvicorn.run(
        "api.main:app",
        host=args.host,
        port=args.port,
        workers=args.workers,
        loop="uvloop",
        http=BoundedHttpToolsProtocol,
        proxy_headers=True,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
        timeout_keep_alive=args.keep_alive,
        log_level=args.log_level,
        access_log=False,  # the app logs one line per request itself (api/middleware.py)
    )


if __name__ == "__main__":  # pragma: no cover
    main()
