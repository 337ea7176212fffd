"""A real HTTP(S) webhook receiver for tests: scriptable answers, every request recorded.

It runs in a thread of the test process on a free port and verifies each delivery's signature
with our own `verify`, as an endpoint owner's code would. Script it with `answer(...)` (one
answer per coming request, in order; 200 afterwards) to play a failing, rate-limiting,
redirecting or slow endpoint.
"""

from __future__ import annotations

import socket
import ssl
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

from common.webhooks.signing import SignatureError, verify
from devstack.machine import free_port

HOST = "127.0.0.1"


@dataclass(frozen=True)
class Answer:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    delay_seconds: float = 0.0  # wait this long before answering (a slow endpoint)


@dataclass(frozen=True)
class ReceivedRequest:
    method: str
    path: str
    headers: dict[str, str]  # names in lower case
    body: bytes
    signature_valid: bool | None  # None when the receiver was given no secret
    server_name: str | None  # the TLS server name (SNI) the client sent, over https


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that gave up (a timeout test) or refused our certificate: expected here."""


class WebhookReceiver:
    def __init__(self, *, secret: str | None = None, tls: ssl.SSLContext | None = None) -> None:
        self.secret = secret
        self.port = free_port()
        self.scheme = "https" if tls else "http"
        self._tls = tls
        self._lock = threading.Lock()
        self._script: list[Answer] = []
        self._requests: list[ReceivedRequest] = []
        self._server_names: dict[ssl.SSLSocket, str | None] = {}
        self._stopping = threading.Event()
        self._server = _Server((HOST, self.port), self._handler_class())
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def url(self, path: str = "/hook", host: str = HOST) -> str:
        return f"{self.scheme}://{host}:{self.port}{path}"

    def answer(self, *answers: Answer) -> None:
        with self._lock:
            self._script.extend(answers)

    def fail_next(self, times: int, status: int = 500) -> None:
        self.answer(*[Answer(status, body=b"receiver is down")] * times)

    @property
    def requests(self) -> list[ReceivedRequest]:
        with self._lock:
            return list(self._requests)

    def wait_for(self, count: int, timeout: float = 10.0) -> list[ReceivedRequest]:
        deadline = time.monotonic() + timeout
        while len(self.requests) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"expected {count} request(s), got {len(self.requests)}")
            time.sleep(0.02)
        return self.requests

    def start(self) -> WebhookReceiver:
        if self._tls:
            self._tls.sni_callback = self._remember_server_name
            self._server.socket = self._tls.wrap_socket(
                self._server.socket, server_side=True, do_handshake_on_connect=False
            )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> WebhookReceiver:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def _remember_server_name(
        self, connection: ssl.SSLSocket | ssl.SSLObject, name: str | None, _: ssl.SSLContext
    ) -> None:
        if isinstance(connection, ssl.SSLSocket):
            with self._lock:
                self._server_names[connection] = name

    def _next_answer(self) -> Answer:
        with self._lock:
            return self._script.pop(0) if self._script else Answer()

    def _record(self, handler: BaseHTTPRequestHandler, body: bytes) -> None:
        headers = {name.lower(): value for name, value in handler.headers.items()}
        valid = None
        if self.secret is not None:
            try:
                verify(self.secret, headers=headers, body=body)
                valid = True
            except SignatureError:
                valid = False
        with self._lock:
            server_name = self._server_names.pop(handler.request, None)
            self._requests.append(
                ReceivedRequest(handler.command, handler.path, headers, body, valid, server_name)
            )

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                if isinstance(self.request, ssl.SSLSocket):
                    self.request.do_handshake()  # here, not in the accepting thread
                super().setup()

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                receiver._record(self, body)
                answer = receiver._next_answer()
                if answer.delay_seconds and receiver._stopping.wait(answer.delay_seconds):
                    return
                self.send_response(answer.status)
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                self.send_header("content-length", str(len(answer.body)))
                self.end_headers()
                self.wfile.write(answer.body)

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet: the test reads `requests`, not a log."""

        return Handler


class FakeDNS:
    """A resolver for `deliver`/`check_target` that answers from a table and counts lookups.

    It lets a test give the receiver a host name that the real DNS does not know, which also
    proves that nothing but our resolver was asked (the system resolver would fail on it).
    """

    def __init__(self, table: dict[str, list[str]]) -> None:
        self.table = table
        self.lookups: list[str] = []

    async def __call__(self, host: str, port: int) -> list[str]:
        self.lookups.append(host)
        if host not in self.table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return self.table[host]
