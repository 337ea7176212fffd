"""A Redis server of our own, for tests that must stop one (never the shared server)."""

from __future__ import annotations

import subprocess
import time

import redis

from devstack.embedded import redis_server_binary
from devstack.machine import free_port


class RedisServer:
    """`redis-server` on a free port, in memory only; `stop()` kills exactly this process."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> RedisServer:
        binary = redis_server_binary()  # the embedded Valkey, else redis-server on PATH
        self._process = subprocess.Popen(
            [binary, "--port", str(self.port), "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis.from_url(self.url)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
            finally:
                client.close()
        return self

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait(timeout=10)
