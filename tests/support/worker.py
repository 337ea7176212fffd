"""A real Celery worker process for the tests whose behaviour is the worker's."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from common.jobs import Queue

ROOT = Path(__file__).resolve().parents[2]


class WorkerProcess:
    def __init__(
        self, env: dict[str, str], log_path: Path, *, pool: str = "solo", concurrency: int = 1
    ) -> None:
        self.env = env
        self.log_path = log_path
        self.pool = pool
        self.concurrency = concurrency
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "worker.app",
                "worker",
                f"--pool={self.pool}",
                f"--concurrency={self.concurrency}",
                "--queues",
                ",".join(Queue.ALL),
                "--without-gossip",
                "--without-mingle",
                "--loglevel=INFO",
            ],
            cwd=ROOT,
            env={**os.environ, "TASKPIPE_LOG_LEVEL": "INFO", **self.env},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            self._wait_ready()
        except RuntimeError:
            self.kill()
            raise

    def _wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"worker exited early:\n{self.log_text()}")
            if "ready." in self.log_text():
                return
            time.sleep(0.1)
        raise RuntimeError(f"worker not ready after {timeout}s:\n{self.log_text()}")

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def kill_children(self) -> int:
        """SIGKILL the pool's child processes only (an OOM kill of one job's process)."""
        assert self.process is not None
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        pids = [int(pid) for pid in children.read_text().split()]
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
        return len(pids)

    def kill(self) -> None:
        """SIGKILL the whole process group: no warm shutdown, no acks."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()
        self.process = None
