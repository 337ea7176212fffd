"""Short benchmark (not a test): requests/s of the hot routes, one at a time, against one real
uvicorn worker, printed as a table. One worker on one core: 1000 / req/s is the CPU cost of a
request in milliseconds, at most; the `CPU ms` column measures it.

    python -m devstack run --migrate -- python -m loadtests.bench     # spawns uvicorn
    python -m loadtests.bench --url http://127.0.0.1:8000 --duration 10 --concurrency 32
    python -m loadtests.bench --only list-warm,patch

`CPU ms` is the spawned server's own CPU time per request (user + system): unlike req/s, it
does not depend on how busy PostgreSQL, Redis or the client keep the other core. The spawned
server runs as in production (uvloop, httptools, INFO logs to /dev/null) on the
`TASKPIPE_*` environment (a migrated database, a Redis database of its own: the benchmark bumps
cache generations in it). Scenarios:

* bare: `GET /health`, no auth, no database, no Redis: the floor of the HTTP stack;
* list-warm / list-cold: the default list page of one user, every request a cache hit / a miss
  (the user's cache generation is bumped before every request, as a write does);
* task-warm / task-cold: `GET /api/v1/tasks/{id}` the same two ways;
* patch: `PATCH /api/v1/tasks/{id}` with `If-Match: *` and a new title each time (a real write:
  the version bumps, the cache generation bumps);
* create: `POST /api/v1/tasks`;
* create-batch: `POST /api/v1/tasks/batch` with 100 tasks (its `CPU ms` / 100 is a task's);
* anchor-bare / anchor-list: the anchors (`loadtests/anchors.py`, a server of their own started
  the same way): a bare FastAPI route, and raw asyncpg serving the same list page as
  list-cold. A second table gives each route as a ratio to its anchor (req/s: ours over the
  anchor's, higher is better; CPU: ours over the anchor's, lower is better), the figures to
  track on a noisy box.

The client is a minimal HTTP/1.1 keep-alive loop, cheap enough not to be the bottleneck on a
small machine. Hit and miss counts come from the server's /metrics.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import re
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httpx
import orjson
import psutil
from redis.asyncio import Redis

from devstack.machine import free_port

LIST = "/api/v1/tasks"
CACHE_METRIC = re.compile(
    r'^taskpipe_cache_requests_total\{kind="\w+",result="(hit|miss|error)"\} ([0-9.e+]+)$', re.M
)


@dataclass
class Result:
    name: str
    seconds: float
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    hits: float = 0.0
    misses: float = 0.0
    server_cpu_seconds: float | None = None

    @property
    def server_cpu_ms(self) -> float | None:
        """CPU the server spent per request (known when the benchmark spawned it)."""
        if self.server_cpu_seconds is None or not self.latencies:
            return None
        return self.server_cpu_seconds / len(self.latencies) * 1000

    @property
    def rps(self) -> float:
        return len(self.latencies) / self.seconds

    def percentile(self, p: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] * 1000


class Connection:
    """One keep-alive HTTP/1.1 connection reading Content-Length framed responses."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, host: str, port: int) -> Connection:
        reader, writer = await asyncio.open_connection(host, port)
        writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return cls(reader, writer)

    async def request(self, raw: bytes) -> int:
        self.writer.write(raw)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        if length:
            await self.reader.readexactly(length)
        return status

    async def close(self) -> None:
        self.writer.close()
        await self.writer.wait_closed()


def build_request(
    host: str,
    path: str,
    token: str | None,
    *,
    method: str = "GET",
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}", "Connection: keep-alive"]
    if token:
        lines.append(f"Authorization: Bearer {token}")
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    if body is not None:
        lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + (body or b"")


@dataclass(frozen=True)
class Scenario:
    name: str
    request: Callable[[], bytes]
    """Called for every request: a fixed request returns the same bytes each time."""
    expect: int = 200
    before_each: Callable[[], Awaitable[object]] | None = None
    anchor: bool = False
    """Served by the anchors' server, not ours."""


async def run_scenario(
    scenario: Scenario, *, host: str, port: int, duration: float, concurrency: int
) -> Result:
    connections = [await Connection.open(host, port) for _ in range(concurrency)]
    for connection in connections:  # warm-up: one request each, not measured
        await connection.request(scenario.request())
    result = Result(scenario.name, duration)
    deadline = time.perf_counter() + duration

    async def worker(connection: Connection) -> None:
        while time.perf_counter() < deadline:
            if scenario.before_each is not None:
                await scenario.before_each()
            raw = scenario.request()
            started = time.perf_counter()
            status = await connection.request(raw)
            if status == scenario.expect:
                result.latencies.append(time.perf_counter() - started)
            else:
                result.errors += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker(connection) for connection in connections))
    result.seconds = time.perf_counter() - started
    for connection in connections:
        await connection.close()
    return result


async def cache_counts(base_url: str) -> tuple[float, float]:
    async with httpx.AsyncClient(base_url=base_url) as client:
        text = (await client.get("/metrics")).text
    counts = {"hit": 0.0, "miss": 0.0}
    for result, value in CACHE_METRIC.findall(text):
        if result in counts:
            counts[result] += float(value)
    return counts["hit"], counts["miss"]


async def seed(base_url: str, tasks: int) -> tuple[str, str, str]:
    """A fresh user with `tasks` tasks over three categories; (token, user id, a task id)."""
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        response = await client.post(
            "/api/v1/auth/register",
            json={
                "email": f"bench-{uuid.uuid4().hex[:12]}@example.com",
                "password": "Bench-Password-9",
                "full_name": "Bench",
            },
        )
        response.raise_for_status()
        body = response.json()
        headers = {"Authorization": f"Bearer {body['access_token']}"}
        categories = []
        for name in ("Work", "Home", "Errands"):
            created = await client.post("/api/v1/categories", json={"name": name}, headers=headers)
            created.raise_for_status()
            categories.append(created.json()["id"])

        async def one(i: int) -> None:
            created = await client.post(
                LIST,
                json={
                    "title": f"Benchmark task {i}",
                    "description": "A task of plausible size " * 4,
                    "priority": ("low", "medium", "high")[i % 3],
                },
                headers=headers,
            )
            created.raise_for_status()
            task_id = created.json()["id"]
            assigned = await client.post(
                f"{LIST}/{task_id}/categories/{categories[i % 3]}", headers=headers
            )
            assigned.raise_for_status()

        for start in range(0, tasks, 20):
            await asyncio.gather(*(one(i) for i in range(start, min(tasks, start + 20))))
        listed = await client.get(LIST, params={"limit": 1}, headers=headers)
        listed.raise_for_status()
        return body["access_token"], body["user"]["id"], listed.json()["items"][0]["id"]


def spawn_anchors(port: int) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "loadtests.anchors", "--port", str(port)]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL)


def spawn_server(port: int, log_level: str) -> subprocess.Popen[bytes]:
    # Every run registers a user from 127.0.0.1 and drives one user's routes flat out: lift
    # the per-IP and per-user limits, not the benchmark (they still run their Redis call).
    env = {
        "TASKPIPE_ENV": "development",
        **os.environ,
        "TASKPIPE_LOG_LEVEL": log_level,
        "TASKPIPE_REGISTER_RATE_LIMIT": "1000000",
        "TASKPIPE_USER_RATE_LIMIT": "1000000000",
        "TASKPIPE_BATCH_RATE_LIMIT": "1000000000",
    }
    command = [
        sys.executable,
        "-m",
        "api.server",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
    ]
    return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL)


async def wait_until_up(base_url: str, startup_seconds: float = 30, path: str = "/health") -> None:
    deadline = time.monotonic() + startup_seconds
    async with httpx.AsyncClient(base_url=base_url) as client:
        while True:
            try:
                if (await client.get(path)).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"server at {base_url} did not come up")
            await asyncio.sleep(0.2)


def _cpu_seconds(server: subprocess.Popen[bytes] | None) -> float | None:
    if server is None:
        return None
    times = psutil.Process(server.pid).cpu_times()
    return float(times.user + times.system)


def print_table(results: list[Result], args: argparse.Namespace) -> None:
    print(
        f"\n{args.tasks} tasks over 3 categories, list pages of {args.limit}, "
        f"{args.concurrency} keep-alive connections, {args.duration:g} s per scenario, "
        f"server log level {args.log_level}\n"
    )
    header = f"{'scenario':<11}{'requests':>10}{'req/s':>8}{'CPU ms':>8}{'p50 ms':>8}"
    header += f"{'p95 ms':>8}{'errors':>8}{'cache hits':>12}"
    print(header)
    print("-" * len(header))
    for r in results:
        served = r.hits + r.misses
        ratio = f"{r.hits / served:.0%}" if served else "-"
        cpu = "-" if r.server_cpu_ms is None else f"{r.server_cpu_ms:.2f}"
        print(
            f"{r.name:<11}{len(r.latencies):>10}{r.rps:>8.0f}{cpu:>8}"
            f"{r.percentile(50):>8.2f}{r.percentile(95):>8.2f}{r.errors:>8}{ratio:>12}"
        )


RATIOS = [  # (our route, its anchor)
    ("bare", "anchor-bare"),
    ("list-warm", "anchor-bare"),
    ("task-warm", "anchor-bare"),
    ("list-cold", "anchor-list"),
]


def print_ratios(results: list[Result]) -> None:
    by_name = {r.name: r for r in results}
    pairs = [(by_name[a], by_name[b]) for a, b in RATIOS if a in by_name and b in by_name]
    if not pairs:
        return
    header = f"{'route':<11}{'anchor':<13}{'req/s ratio':>12}{'CPU ratio':>11}"
    print(f"\n{header}\n{'-' * len(header)}")
    for ours, anchor in pairs:
        cpu = "-"
        if ours.server_cpu_ms is not None and anchor.server_cpu_ms:
            cpu = f"{ours.server_cpu_ms / anchor.server_cpu_ms:.2f}x"
        print(f"{ours.name:<11}{anchor.name:<13}{ours.rps / anchor.rps:>11.2f}x{cpu:>11}")


def scenarios(
    host: str,
    token: str,
    task_id: str,
    limit: int,
    bump: Callable[[], Awaitable[object]],
    user_id: str,
) -> list[Scenario]:
    list_page = build_request(host, f"{LIST}?limit={limit}", token)
    one_task = build_request(host, f"{LIST}/{task_id}", token)
    edits = itertools.count()

    def patch() -> bytes:
        body = orjson.dumps({"title": f"Benchmark edit {next(edits)}"})
        return build_request(
            host, f"{LIST}/{task_id}", token, method="PATCH", body=body, headers={"If-Match": "*"}
        )

    def create() -> bytes:
        body = orjson.dumps({"title": f"Benchmark create {next(edits)}", "priority": "high"})
        return build_request(host, LIST, token, method="POST", body=body)

    def create_batch() -> bytes:
        items = [
            {"title": f"Benchmark create {next(edits)}", "priority": "high"} for _ in range(100)
        ]
        body = orjson.dumps({"items": items})
        return build_request(host, f"{LIST}/batch", token, method="POST", body=body)

    return [
        Scenario("bare", lambda: build_request(host, "/health", None)),
        Scenario("list-warm", lambda: list_page),
        Scenario("list-cold", lambda: list_page, before_each=bump),
        Scenario("task-warm", lambda: one_task),
        Scenario("task-cold", lambda: one_task, before_each=bump),
        Scenario("patch", patch),
        Scenario("create", create, expect=201),
        Scenario("create-batch", create_batch, expect=201),
        Scenario("anchor-bare", lambda: build_request(host, "/anchor/bare", None), anchor=True),
        Scenario(
            "anchor-list",
            lambda: build_request(host, f"/anchor/tasks?user_id={user_id}", None),
            anchor=True,
        ),
    ]


async def main(args: argparse.Namespace) -> None:
    server = None
    base_url = args.url
    if base_url is None:
        port = free_port()
        base_url = f"http://127.0.0.1:{port}"
        server = spawn_server(port, args.log_level)
    anchors_port = free_port()
    anchors = spawn_anchors(anchors_port)
    try:
        await wait_until_up(base_url)
        await wait_until_up(f"http://127.0.0.1:{anchors_port}", path="/anchor/bare")
        if server is not None and server.poll() is not None:
            raise RuntimeError("the spawned server exited (port taken?): not benchmarking another")
        token, user_id, task_id = await seed(base_url, args.tasks)
        parts = urlsplit(base_url)
        host, port = parts.hostname or "127.0.0.1", parts.port or 80
        redis = Redis.from_url(args.redis_url or os.environ.get("TASKPIPE_REDIS_URL", ""))
        generation = f"gen:{{{user_id}}}"

        async def bump() -> object:
            return await redis.incr(generation)

        wanted = set(args.only.split(",")) if args.only else None
        results = []
        for scenario in scenarios(host, token, task_id, args.limit, bump, user_id):
            if wanted is not None and scenario.name not in wanted:
                continue
            hits, misses = await cache_counts(base_url)
            serving = anchors if scenario.anchor else server
            cpu_before = _cpu_seconds(serving)
            result = await run_scenario(
                scenario,
                host="127.0.0.1" if scenario.anchor else host,
                port=anchors_port if scenario.anchor else port,
                duration=args.duration,
                concurrency=args.concurrency,
            )
            cpu_after = _cpu_seconds(serving)
            after_hits, after_misses = await cache_counts(base_url)
            result.hits, result.misses = after_hits - hits, after_misses - misses
            if cpu_before is not None and cpu_after is not None:
                result.server_cpu_seconds = cpu_after - cpu_before
            results.append(result)
        await redis.aclose()
        print_table(results, args)
        print_ratios(results)
    finally:
        anchors.terminate()
        anchors.wait(timeout=10)
        if server is not None:
            server.terminate()
            server.wait(timeout=10)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", help="a running server (default: spawn uvicorn on 127.0.0.1)")
    parser.add_argument("--redis-url", help="the server's Redis (default: $TASKPIPE_REDIS_URL)")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per scenario")
    parser.add_argument("--concurrency", type=int, default=32, help="keep-alive connections")
    parser.add_argument("--tasks", type=int, default=200, help="tasks of the benchmark user")
    parser.add_argument("--limit", type=int, default=20, help="page size")
    parser.add_argument("--only", help="comma list of scenario names (default: all)")
    parser.add_argument("--log-level", default="INFO", help="server log level when spawned")
    return parser.parse_args()


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
