"""HTTP metrics and the /metrics exposition (multi-process aware for several uvicorn workers)."""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client import REGISTRY as DEFAULT_REGISTRY
from redis.asyncio import Redis

from common.jobstats import FAMILIES, read_all
from common.metrics import REDIS_FAILURES
from common.redis import REDIS_ERRORS

HTTP_REQUESTS = Counter(
    "taskpipe_http_requests_total",
    "HTTP requests by route template and status",
    ["method", "route", "status"],
)
HTTP_LATENCY = Histogram(
    "taskpipe_http_request_duration_seconds",
    "HTTP request latency by route template",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 1.0, 2.5, 5.0),
)


def _job_stats_text(stats: dict[str, dict[str, int]]) -> bytes:
    """Worker totals (kept in Redis by common.jobstats) in the Prometheus text format."""
    lines: list[str] = []
    for family, (name, help_text, label) in FAMILIES.items():
        lines += [f"# HELP {name} {help_text}", f"# TYPE {name} counter"]
        lines += [
            f'{name}{{{label}="{key}"}} {value}'
            for key, value in sorted(stats.get(family, {}).items())
        ]
    return ("\n".join(lines) + "\n").encode()


async def render_metrics(redis: Redis) -> tuple[bytes, str]:
    if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        payload = generate_latest(registry)
    else:
        payload = generate_latest(DEFAULT_REGISTRY)
    try:
        payload += _job_stats_text(await read_all(redis))
    except REDIS_ERRORS:
        REDIS_FAILURES.labels(operation="job_stats").inc()
    return payload, CONTENT_TYPE_LATEST
