"""What the rest of devstack leans on: the log, the error, the service probes, running programs."""

from __future__ import annotations

import enum
import socket
import struct
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devstack.machine import LOCALHOST, WAIT_TIMEOUT, wait_until

REPO_ROOT = Path(__file__).resolve().parents[1]
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
EMBEDDED_HOST = LOCALHOST
PROBE_TIMEOUT = 2.0
START_TIMEOUT = WAIT_TIMEOUT


class DevstackError(Exception):
    """A service or step devstack cannot provide; the message says what was tried and what to do."""


class Embedded(enum.StrEnum):
    """`--embedded`: embed only when nothing else works, always, or never."""

    AUTO = "auto"
    ALWAYS = "always"
    NEVER = "never"


class Origin(enum.StrEnum):
    """How devstack came by a service, or (for `check`, which starts nothing) would."""

    FOUND = "found"
    STARTED = "started"
    EMBEDDED = "embedded"
    TO_START = "to start"
    TO_EMBED = "to embed"


@dataclass(frozen=True)
class Service:
    """A service to hand to the command: `url` is the real one, `display_url` hides passwords."""

    name: str
    url: str
    display_url: str
    origin: Origin
    detail: str


def log(message: str) -> None:
    print(f"devstack: {message}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Handshake:
    """Bytes that make a server of one kind reply, and the first bytes its reply may start with.

    A bare TCP connect is not enough: a proxy or another program may accept on the port.
    """

    hello: bytes
    replies: tuple[bytes, ...]


# SSLRequest: PostgreSQL replies "S" or "N" ("E" if very old) and logs nothing when we hang up.
POSTGRES_HANDSHAKE = Handshake(struct.pack("!ii", 8, 80877103), (b"S", b"N", b"E"))
# PING: Redis replies "+PONG", or an error ("-NOAUTH ...", "-DENIED ...") that is still Redis.
REDIS_HANDSHAKE = Handshake(b"PING\r\n", (b"+", b"-"))


@dataclass(frozen=True)
class Endpoint:
    """Where a server should answer: a TCP host and port, or a unix socket file."""

    host: str
    port: int
    handshake: Handshake
    socket_path: str | None = None

    @property
    def is_local(self) -> bool:
        return self.socket_path is not None or self.host in LOCAL_HOSTS

    def reachable(self, timeout: float = PROBE_TIMEOUT) -> bool:
        """Whether the expected kind of server replies to its handshake here."""
        try:
            with self._connect(timeout) as sock:
                sock.sendall(self.handshake.hello)
                reply = sock.recv(1)
        except OSError:
            return False
        return any(reply == expected[:1] for expected in self.handshake.replies)

    def taken(self, timeout: float = PROBE_TIMEOUT) -> bool:
        """Whether anything at all accepts connections here."""
        try:
            with self._connect(timeout):
                return True
        except OSError:
            return False

    def _connect(self, timeout: float) -> socket.socket:
        if self.socket_path is None:
            sock = socket.create_connection((self.host, self.port), timeout=timeout)
        else:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.settimeout(timeout)
                sock.connect(self.socket_path)
            except OSError:
                sock.close()
                raise
        sock.settimeout(timeout)
        return sock

    def __str__(self) -> str:
        if self.socket_path is not None:
            return self.socket_path
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


def run_program(
    argv: Sequence[str], *, timeout: float = START_TIMEOUT, **kwargs: Any
) -> subprocess.CompletedProcess[str]:
    """Run a program devstack picked itself (never through a shell), capturing its output."""
    return subprocess.run(  # noqa: S603 - argv is built here from fixed programs and our own paths
        list(argv),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        **kwargs,
    )


def output_of(result: subprocess.CompletedProcess[str]) -> str:
    return (result.stderr or result.stdout).strip() or f"exit code {result.returncode}"


def start_local_server(
    command: Sequence[str], endpoint: Endpoint, tried: list[str], timeout: float = START_TIMEOUT
) -> bool:
    """Run the command that starts one of the machine's own servers and wait for it to answer
    at `endpoint`; when it does not, note why in `tried` and return False."""
    shown = " ".join(command)
    try:
        result = run_program(command, timeout=timeout)
    except (OSError, subprocess.SubprocessError) as exc:
        tried.append(f"`{shown}` failed: {exc}")
        return False
    if result.returncode != 0:
        tried.append(f"`{shown}` failed: {output_of(result)}")
        return False
    if not wait_until(endpoint.reachable):
        tried.append(f"`{shown}` ran but {endpoint} did not answer")
        return False
    return True


def why_embedded(name: str, endpoint: Endpoint, embedded: Embedded, tried: list[str]) -> str:
    """The reason logged when an embedded server is used: the flag, or what was tried."""
    if embedded is Embedded.ALWAYS:
        return "--embedded always"
    notes = f" ({'; '.join(tried[1:])})" if len(tried) > 1 else ""
    return f"no {name} reachable at {endpoint}{notes}"
