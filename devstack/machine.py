"""What runs on one machine share and must not collide on: ports, Redis databases, the terminal
and the processes they start. Used by devstack, the tests and the load tests alike.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import FrameType

import psutil
import redis

LOCALHOST = "127.0.0.1"
WAIT_TIMEOUT = 30.0
REDIS_CLAIM_KEY = "taskpipe:test-run"
"""The key whose presence marks a Redis database index as taken (by a test run, a load test,
a stack under test); every Taskpipe checkout on the machine uses the same one."""
REDIS_DATABASES = range(1, 16)  # 0 is what `make run` uses


def free_port(host: str = LOCALHOST) -> int:
    """A TCP port nothing listens on right now (the kernel's pick), never a fixed 8000 or 6379."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def port_is_free(host: str, port: int) -> bool:
    """Whether a server could listen on `host:port` now (bound as servers do, SO_REUSEADDR)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def port_holder(port: int) -> str:
    """Which process listens on TCP `port`: "pid 123 (its command line)", as far as we may see."""
    try:
        connections = psutil.net_connections(kind="tcp")
    except psutil.Error:  # macOS allows this to root only
        return f"another program (`lsof -i :{port}` names it)"
    for connection in connections:
        if connection.status == psutil.CONN_LISTEN and connection.laddr.port == port:
            if connection.pid is None:
                return "a process of another user"
            try:
                command = " ".join(psutil.Process(connection.pid).cmdline())
            except psutil.Error:
                command = "?"
            return f"pid {connection.pid} ({command[:160]})"
    return "another program"


class NoFreeRedisDatabase(RuntimeError):
    """Every Redis database index 1-15 is claimed by another run."""


class RedisClaim:
    """Redis database indexes taken for one run with `SET NX` on a marker key.

    Runs flush their databases freely, so two runs on one database would wipe each other's
    queues and cache. Test runs claim from the bottom, load tests from the top. The claim
    expires after `ttl` seconds, so a run that was killed gives its databases back.
    """

    def __init__(
        self, base_url: str, *, owner: str, count: int = 1, ttl: int = 3600, from_top: bool = False
    ) -> None:
        self.base_url = base_url.rsplit("/", 1)[0]
        self.owner = owner
        self.ttl = ttl
        self.indexes: list[int] = []
        for index in reversed(REDIS_DATABASES) if from_top else REDIS_DATABASES:
            if len(self.indexes) == count:
                break
            with self._client(index) as client:
                if client.set(REDIS_CLAIM_KEY, owner, nx=True, ex=ttl):
                    self.indexes.append(index)
        if len(self.indexes) < count:
            self.release()
            raise NoFreeRedisDatabase(
                f"no free Redis database among 1-15 at {self.base_url} (other runs claim them)"
            )

    def _client(self, index: int) -> redis.Redis:
        return redis.Redis.from_url(f"{self.base_url}/{index}")

    def url(self, position: int = 0) -> str:
        return f"{self.base_url}/{self.indexes[position]}"

    def flush(self) -> None:
        """Empty the claimed databases and keep the claim."""
        for index in self.indexes:
            with self._client(index) as client:
                pipe = client.pipeline(transaction=True)
                pipe.flushdb()
                pipe.set(REDIS_CLAIM_KEY, self.owner, ex=self.ttl)
                pipe.execute()

    def release(self) -> None:
        """Empty the claimed databases; that removes the claim too."""
        for index in self.indexes:
            with self._client(index) as client:
                client.flushdb()
        self.indexes = []


def in_terminal_foreground() -> bool:
    """Whether this process group is its terminal's foreground group.

    Then a Ctrl-C in that terminal reached every process of the group, our child included,
    and passing SIGINT on would make the child see it twice.
    """
    try:
        with open("/dev/tty", "rb") as tty:
            return os.tcgetpgrp(tty.fileno()) == os.getpgrp()
    except OSError:
        return False


def exit_status(returncode: int) -> int:
    """A Popen return code as a shell reports it: 128 + N for a process killed by signal N."""
    return returncode if returncode >= 0 else 128 - returncode


def run_forwarding_signals(
    command: Sequence[str], *, env: Mapping[str, str] | None = None, cwd: Path | None = None
) -> int:
    """Run `command`, pass on the signals that should stop it, return its exit status.

    SIGTERM and SIGHUP are passed on; SIGINT too, unless a Ctrl-C in our terminal already
    reached the command. Raises OSError when the command cannot be started.
    """
    child = subprocess.Popen(list(command), env=env, cwd=cwd)  # noqa: S603 - the caller's command

    def forward(signum: int, _frame: FrameType | None) -> None:
        if signum == signal.SIGINT and in_terminal_foreground():
            return
        with contextlib.suppress(ProcessLookupError):
            child.send_signal(signum)

    forwarded = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    previous = {signum: signal.signal(signum, forward) for signum in forwarded}
    try:
        returncode = child.wait()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return exit_status(returncode)


def wait_until(check: Callable[[], bool], timeout: float = WAIT_TIMEOUT) -> bool:
    """Poll `check` every 0.1 s until it is true (True) or `timeout` seconds passed (False)."""
    deadline = time.monotonic() + timeout
    while True:
        if check():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.1)


def pid_alive(pid: int) -> bool:
    """Whether `pid` runs; a zombie waiting for a slow init to reap it counts as gone."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)  # reap it if it was ours (we may be PID 1 in a container)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(OSError, IndexError):
        # /proc/<pid>/stat is "pid (comm) state ...", and comm may contain spaces
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    return True


def read_pid(path: Path) -> int | None:
    """The pid in a pid file (its first word), or None when there is none."""
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def stop_process(pid: int, how: signal.Signals, timeout: float = WAIT_TIMEOUT) -> bool:
    """Send `how` and wait for `pid` to go; SIGKILL it after `timeout`. True if it was killed."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, how)
    if wait_until(lambda: not pid_alive(pid), timeout):
        return False
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    return True


def stop_groups(
    processes: Sequence[subprocess.Popen[bytes]], timeout: float = WAIT_TIMEOUT
) -> list[subprocess.Popen[bytes]]:
    """SIGTERM the process groups these lead (started with `start_new_session=True`) all at
    once, wait up to `timeout` for all, SIGKILL the groups still there; return those."""
    for process in processes:
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    killed = []
    for process in processes:
        try:
            process.wait(max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)
            killed.append(process)
    return killed
