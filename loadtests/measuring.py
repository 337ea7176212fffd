"""What the runner measures besides Locust: CPU by process group, and py-spy profiles."""

from __future__ import annotations

import csv
import os
import subprocess
import threading
import time
from pathlib import Path

import psutil

from loadtests.runner import PY, ROOT
from loadtests.services import Platform


class CpuSampler(threading.Thread):
    """Once a second, CPU used in cores (1.0 = one core busy) by: `app` (uvicorn, and each worker
    as `api_worker_N`), `celery`, `locust` (each with its descendants), `postgres` and `redis`
    (by process name, machine-wide: any client counts), `runner` (this process), `machine`, and
    `other`: the rest of the machine, i.e. whoever else was using it during the run.

    One pass over /proc per tick (psutil reads name, parent and CPU times from the same file),
    so sampling costs a few milliseconds, not a share of the machine it measures."""

    NAMED = {"postgres": ("postgres", "postmaster"), "redis": ("redis-server",)}

    def __init__(self, path: Path, roots: dict[str, list[int]], singles: dict[str, int]) -> None:
        super().__init__(name="cpu-sampler", daemon=True)
        self.path = path
        self.roots = roots  # group -> pids whose process trees form the group
        self.singles = singles  # group -> one pid (e.g. a uvicorn worker)
        self.stopped = threading.Event()
        self._last: dict[int, float] = {}

    def _snapshot(self) -> dict[int, tuple[int, str, float]]:
        """pid -> (parent pid, name, CPU seconds used so far)."""
        found = {}
        for process in psutil.process_iter(["ppid", "name", "cpu_times"]):
            info = process.info
            if info["cpu_times"] is not None:
                times = info["cpu_times"]
                found[process.pid] = (info["ppid"], info["name"] or "", times.user + times.system)
        return found

    def _tick(self, elapsed: float) -> dict[str, float]:
        processes = self._snapshot()
        used = {pid: total - self._last.get(pid, total) for pid, (_, _, total) in processes.items()}
        self._last = {pid: total for pid, (_, _, total) in processes.items()}
        children: dict[int, list[int]] = {}
        for pid, (ppid, _, _) in processes.items():
            children.setdefault(ppid, []).append(pid)

        def tree(root: int) -> set[int]:
            members, stack = set(), [root]
            while stack:
                pid = stack.pop()
                if pid in processes and pid not in members:
                    members.add(pid)
                    stack.extend(children.get(pid, ()))
            return members

        cores: dict[str, float] = {}
        counted: set[int] = set()
        for group, roots in self.roots.items():
            members = set().union(*(tree(root) for root in roots)) if roots else set()
            counted |= members
            cores[group] = sum(used[pid] for pid in members) / elapsed
        for group, names in self.NAMED.items():
            members = {pid for pid, (_, name, _) in processes.items() if name in names}
            counted |= members
            cores[group] = sum(used[pid] for pid in members) / elapsed
        cores["runner"] = used.get(os.getpid(), 0.0) / elapsed
        counted.add(os.getpid())
        for group, pid in self.singles.items():
            cores[group] = used.get(pid, 0.0) / elapsed
        cores["other"] = sum(used[pid] for pid in processes if pid not in counted) / elapsed
        return cores

    def run(self) -> None:
        with self.path.open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(("time", "group", "cores"))
            self._snapshot_baseline()
            machine = psutil.cpu_times()
            last = time.monotonic()
            while not self.stopped.wait(1.0):
                now = time.monotonic()
                elapsed, last = now - last, now
                stamp = f"{time.time():.3f}"
                for group, value in self._tick(elapsed).items():
                    writer.writerow((stamp, group, f"{value:.3f}"))
                current = psutil.cpu_times()
                busy = (sum(current) - current.idle - getattr(current, "iowait", 0.0)) - (
                    sum(machine) - machine.idle - getattr(machine, "iowait", 0.0)
                )
                machine = current
                writer.writerow((stamp, "machine", f"{busy / elapsed:.3f}"))
                handle.flush()

    def _snapshot_baseline(self) -> None:
        self._last = {pid: total for pid, (_, _, total) in self._snapshot().items()}

    def stop(self) -> None:
        self.stopped.set()
        self.join(5)


PROFILE_SUFFIX = {"flamegraph": "svg", "speedscope": "json", "raw": "txt"}


def start_profilers(
    platform_: Platform, directory: Path, seconds: int, profile_format: str
) -> list[subprocess.Popen[bytes]]:
    """py-spy on every uvicorn worker for `seconds` (sampling, without pausing the process)."""
    py_spy = Path(PY).with_name("py-spy")
    profilers = []
    for worker in platform_.api_workers():
        output = directory / f"profile-api-{worker.pid}.{PROFILE_SUFFIX[profile_format]}"
        argv = [
            *(str(py_spy), "record", "--pid", str(worker.pid), "--duration", str(seconds)),
            *("--rate", "100", "--nonblocking", "--format", profile_format),
            *("--output", str(output)),
        ]
        log_handle = (directory / "logs" / f"py-spy-{worker.pid}.log").open("ab")
        profilers.append(
            subprocess.Popen(argv, stdout=log_handle, stderr=subprocess.STDOUT, cwd=ROOT)
        )
    return profilers
