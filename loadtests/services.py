"""The platform under test: API, worker, beat and a mail catcher, each in its own process group."""

from __future__ import annotations

import contextlib
import json
import re
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import psutil

from devstack.machine import stop_groups
from loadtests.runner import PY, ROOT, RunError, log

KEEP_ALIVE_SECONDS = 75
"""uvicorn's default keep-alive (5 s) would close idle connections while simulated users think
(1-5 s), and a POST or PATCH sent on a connection the server is closing cannot be retried safely.
In production clients reach uvicorn through the ingress, which holds upstream connections (nginx:
75 s); here Locust talks to uvicorn directly, so the run gives uvicorn the ingress's keep-alive."""
READY_TIMEOUT = 60.0
STOP_TIMEOUT = 30.0


@dataclass
class Process:
    name: str
    popen: subprocess.Popen[bytes]
    log: IO[bytes]


class Platform:
    """The API, worker, beat and mail catcher of one step, each in its own process group."""

    def __init__(
        self, environ: dict[str, str], logs: Path, port: int, workers: int, nice: int = 0
    ) -> None:
        self.environ = environ
        self.logs = logs
        self.port = port
        self.workers = workers
        self.nice = nice
        self.processes: list[Process] = []

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _spawn(self, name: str, argv: list[str]) -> Process:
        handle = (self.logs / f"{name}.log").open("ab")
        if self.nice:
            argv = ["nice", "-n", str(self.nice), *argv]  # nice execs: the pid stays the same
        popen = subprocess.Popen(
            argv,
            cwd=ROOT,
            env=self.environ,
            stdin=subprocess.DEVNULL,
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        process = Process(name, popen, handle)
        self.processes.append(process)
        return process

    def start(self) -> None:
        self.logs.mkdir(parents=True, exist_ok=True)
        smtp_port = int(self.environ["TASKPIPE_SMTP_PORT"])
        self._spawn("mail", [PY, "-m", "aiosmtpd", "-n", "-l", f"127.0.0.1:{smtp_port}"])
        self._spawn(
            "worker",
            [
                PY,
                "-m",
                "celery",
                "-A",
                "worker.app",
                "worker",
                "--queues",
                "email,maintenance,cache",
                "--without-gossip",
                "--without-mingle",
                "--loglevel",
                "INFO",
            ],
        )
        self._spawn("beat", [PY, "-m", "celery", "-A", "worker.app", "beat", "--loglevel", "INFO"])
        self._spawn("api", self.api_argv())
        self._wait_ready()

    def api_argv(self) -> list[str]:
        """The API as every environment runs it (`python -m api.server`: uvloop, httptools)."""
        return [
            *(PY, "-m", "api.server", "--host", "127.0.0.1", "--port", str(self.port)),
            *("--workers", str(self.workers), "--log-level", "warning"),
            *("--keep-alive", str(KEEP_ALIVE_SECONDS)),
        ]

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            for process in self.processes:
                if process.popen.poll() is not None:
                    raise RunError(
                        f"{process.name} exited with {process.popen.returncode}; "
                        f"see {self.logs / (process.name + '.log')}"
                    )
            if self._answers_ready() and len(self.api_workers()) >= self.workers:
                return
            time.sleep(0.25)
        raise RunError(f"the API was not ready within {READY_TIMEOUT:.0f}s; see {self.logs}")

    def _answers_ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.base_url}/ready", timeout=2) as response:
                return bool(response.status == 200)
        except (OSError, urllib.error.URLError):
            return False

    def group(self, name: str) -> list[psutil.Process]:
        """The processes of one platform process: itself and its children."""
        found: list[psutil.Process] = []
        for process in self.processes:
            if process.name == name and process.popen.poll() is None:
                with contextlib.suppress(psutil.Error):
                    parent = psutil.Process(process.popen.pid)
                    found.extend([parent, *parent.children(recursive=True)])
        return found

    def pids(self, *names: str) -> list[int]:
        return [process.popen.pid for process in self.processes if process.name in names]

    def api_workers(self) -> list[psutil.Process]:
        """uvicorn's worker processes (the master only supervises)."""
        api = self.group("api")
        return [process for process in api[1:] if _is_uvicorn_worker(process)]

    def openapi(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"{self.base_url}/openapi.json", timeout=10) as response:
            document: dict[str, Any] = json.load(response)
            return document

    def metrics(self, path: Path) -> dict[str, Any]:
        """Keep /metrics (all workers: PROMETHEUS_MULTIPROC_DIR) and read the cache hit ratios."""
        try:
            request = urllib.request.Request(
                f"{self.base_url}/metrics",
                headers={"Authorization": f"Bearer {self.environ['TASKPIPE_METRICS_TOKEN']}"},
            )
            with urllib.request.urlopen(request, timeout=10) as response:
                text = response.read().decode()
        except (OSError, urllib.error.URLError) as exc:
            return {"error": repr(exc)}
        path.write_text(text)
        return {"cache": cache_ratios(text)}

    def stop(self) -> None:
        """SIGTERM every group (uvicorn and Celery shut down gracefully), SIGKILL stragglers."""
        processes = list(reversed(self.processes))
        killed = stop_groups([process.popen for process in processes], STOP_TIMEOUT)
        for process in processes:
            if process.popen in killed:
                log(f"{process.name} did not stop within {STOP_TIMEOUT:.0f}s; killed it")
            process.log.close()
        self.processes = []


_CACHE_SAMPLE = re.compile(
    r"^taskpipe_cache_requests_total\{(?P<labels>[^}]*)\} (?P<value>[0-9.e+]+)$", re.M
)


def cache_ratios(metrics_text: str) -> dict[str, dict[str, float]]:
    """Hits, misses, errors and the hit ratio of the response cache, by kind."""
    counts: dict[str, dict[str, float]] = {}
    for match in _CACHE_SAMPLE.finditer(metrics_text):
        labels = dict(re.findall(r'(\w+)="([^"]*)"', match["labels"]))
        kind = counts.setdefault(labels.get("kind", "?"), {})
        result = labels.get("result", "?")
        kind[result] = kind.get(result, 0.0) + float(match["value"])
    for kind in counts.values():
        lookups = sum(kind.values())
        kind["hit_ratio"] = round(kind.get("hit", 0.0) / lookups, 3) if lookups else 0.0
    return counts


def _is_uvicorn_worker(process: psutil.Process) -> bool:
    with contextlib.suppress(psutil.Error):
        # uvicorn's workers are multiprocessing spawn children; its resource tracker is not one
        return "resource_tracker" not in " ".join(process.cmdline())
    return False
