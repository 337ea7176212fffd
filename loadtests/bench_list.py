"""Short benchmark (not a test): requests/s of `GET /api/v1/tasks` with a warm cache, with a cold
cache, and of a bare endpoint, in one run against a real uvicorn, printed as a table.

    python -m loadtests.bench_list                      # spawns uvicorn on 127.0.0.1
    python -m loadtests.bench_list --url http://127.0.0.1:8000 --duration 10 --concurrency 32

The spawned server uses the `TASKPIPE_*` environment (a migrated database, a Redis database of
its own: the benchmark bumps cache generations in it). Scenarios:

* bare: `GET /health`, no auth, no database, no Redis: the floor of the HTTP stack;
* warm: the default list page of one user, every request a cache hit;
* cold: the same page, but the user's cache generation is bumped before every request (what a
  write does), so every request is a miss that queries PostgreSQL and stores the page.

The client is a minimal HTTP/1.1 keep-alive loop (pre-built request bytes), cheap enough not to
be the bottleneck on a small machine. Hit and miss counts come from the server's /metrics.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import socket
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httpx
from redis.asyncio import Redis

LIST = "/api/v1/tasks"
CACHE_METRIC = re.compile(
    r'^taskpipe_cache_requests_total\{kind="tasks",result="(hit|miss|error)"\} ([0-9.e+]+)$', re.M
)


@dataclass
class Result:
    name: str
    seconds: float
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    hits: float = 0.0
    misses: float = 0.0

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


def build_request(host: str, path: str, token: str | None) -> bytes:
    lines = [f"GET {path} HTTP/1.1", f"Host: {host}", "Connection: keep-alive"]
    if token:
        lines.append(f"Authorization: Bearer {token}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def run_scenario(
    name: str,
    *,
    host: str,
    port: int,
    raw: bytes,
    duration: float,
    concurrency: int,
    before_each: Callable[[], Awaitable[object]] | None = None,
) -> Result:
    connections = [await Connection.open(host, port) for _ in range(concurrency)]
    for connection in connections:  # warm-up: one request each, not measured
        await connection.request(raw)
    result = Result(name, duration)
    deadline = time.perf_counter() + duration

    async def worker(connection: Connection) -> None:
        while time.perf_counter() < deadline:
            if before_each is not None:
                await before_each()
            started = time.perf_counter()
            status = await connection.request(raw)
            if status == 200:
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


async def seed(base_url: str, tasks: int) -> tuple[str, str]:
    """A fresh user with `tasks` tasks over three categories; returns (token, user id)."""
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
        return body["access_token"], body["user"]["id"]


def spawn_server(port: int, log_level: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "TASKPIPE_LOG_LEVEL": log_level}
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "api.main:app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--no-access-log",
        "--log-level",
        "warning",
    ]
    return subprocess.Popen(command, env=env)


async def wait_until_up(base_url: str, startup_seconds: float = 30) -> None:
    deadline = time.monotonic() + startup_seconds
    async with httpx.AsyncClient(base_url=base_url) as client:
        while True:
            try:
                if (await client.get("/health")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"server at {base_url} did not come up")
            await asyncio.sleep(0.2)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def print_table(results: list[Result], args: argparse.Namespace) -> None:
    print(
        f"\nGET {LIST}?limit={args.limit} ({args.tasks} tasks, 3 categories), "
        f"{args.concurrency} keep-alive connections, {args.duration:g} s per scenario\n"
    )
    header = f"{'scenario':<10}{'requests':>10}{'req/s':>10}{'p50 ms':>9}{'p95 ms':>9}"
    header += f"{'p99 ms':>9}{'errors':>8}{'cache hits':>12}"
    print(header)
    print("-" * len(header))
    for r in results:
        served = r.hits + r.misses
        ratio = f"{r.hits / served:.0%}" if served else "-"
        print(
            f"{r.name:<10}{len(r.latencies):>10}{r.rps:>10.0f}{r.percentile(50):>9.2f}"
            f"{r.percentile(95):>9.2f}{r.percentile(99):>9.2f}{r.errors:>8}{ratio:>12}"
        )


async def main(args: argparse.Namespace) -> None:
    server = None
    base_url = args.url
    if base_url is None:
        port = free_port()
        base_url = f"http://127.0.0.1:{port}"
        server = spawn_server(port, args.log_level)
    try:
        await wait_until_up(base_url)
        if server is not None and server.poll() is not None:
            raise RuntimeError("the spawned server exited (port taken?): not benchmarking another")
        token, user_id = await seed(base_url, args.tasks)
        parts = urlsplit(base_url)
        host, port = parts.hostname or "127.0.0.1", parts.port or 80
        redis = Redis.from_url(args.redis_url or os.environ.get("TASKPIPE_REDIS_URL", ""))
        generation = f"gen:{{{user_id}}}"

        async def bump() -> object:
            return await redis.incr(generation)

        list_request = build_request(host, f"{LIST}?limit={args.limit}", token)
        scenarios: list[tuple[str, bytes, Callable[[], Awaitable[object]] | None]] = [
            ("bare", build_request(host, "/health", None), None),
            ("warm", list_request, None),
            ("cold", list_request, bump),
        ]
        results = []
        for name, raw, before_each in scenarios:
            hits, misses = await cache_counts(base_url)
            result = await run_scenario(
                name,
                host=host,
                port=port,
                raw=raw,
                duration=args.duration,
                concurrency=args.concurrency,
                before_each=before_each,
            )
            after_hits, after_misses = await cache_counts(base_url)
            result.hits, result.misses = after_hits - hits, after_misses - misses
            results.append(result)
        await redis.aclose()
        print_table(results, args)
        warm, cold = results[1], results[2]
        extra_ms = (statistics.median(cold.latencies) - statistics.median(warm.latencies)) * 1000
        print(f"\nwarm / cold: {warm.rps / cold.rps:.1f}x; p50 cold - warm: {extra_ms:.2f} ms")
    finally:
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
    parser.add_argument("--log-level", default="WARNING", help="server log level when spawned")
    return parser.parse_args()


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
