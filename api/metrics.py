"""HTTP metrics and the /metrics exposition (multi-process aware for several uvicorn workers).

Besides this process's own metrics, a scrape reports what no single process owns, read when
Prometheus asks: the workers' totals and heartbeats (kept in Redis by common.jobstats), the
broker's queue depths and the outbox's jobs (overdue, parked, in flight). Each of those reads
is bounded in time and skipped (and logged) when its store does not answer, so /metrics itself
never hangs or fails.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client import REGISTRY as DEFAULT_REGISTRY
from prometheus_client.utils import floatToGoString
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from common.db.outbox import OVERDUE_GRACE, OutboxState, outbox_state
from common.jobs import Queue
from common.jobstats import FAMILIES, read_all, read_heartbeats
from common.logging import get_logger
from common.metrics import REDIS_FAILURES
from common.redis import REDIS_ERRORS

if TYPE_CHECKING:
    from api.resources import Resources

log = get_logger(__name__)

SCRAPE_READ_TIMEOUT_SECONDS = 2.0
UNACKED_KEY = "unacked"  # kombu's Redis transport: messages delivered to a worker, not yet acked

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
DB_POOL_IN_USE = Gauge(
    "taskpipe_db_pool_connections_in_use",
    "Database connections checked out of the API's pools",
    multiprocess_mode="livesum",
)
DB_POOL_MAX = Gauge(
    "taskpipe_db_pool_connections_max",
    "The most connections the API's pools may open (pool size + overflow)",
    multiprocess_mode="livesum",
)


def observe_pool(engine: AsyncEngine, capacity: int) -> None:
    """Count checkouts of the engine's pool (every process reports its own; /metrics adds up)."""
    DB_POOL_MAX.set(capacity)
    event.listen(engine.sync_engine, "checkout", lambda *_: DB_POOL_IN_USE.inc())
    event.listen(engine.sync_engine, "checkin", lambda *_: DB_POOL_IN_USE.dec())


Sample = tuple[dict[str, str], float]


def family_text(name: str, kind: str, help_text: str, samples: Iterable[Sample]) -> str:
    """One metric family in the Prometheus text format."""
    lines = [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
    for labels, value in samples:
        rendered = ",".join(f'{key}="{label}"' for key, label in labels.items())
        number = floatToGoString(value)  # type: ignore[no-untyped-call]
        lines.append(f"{name}{{{rendered}}} {number}" if rendered else f"{name} {number}")
    return "\n".join(lines) + "\n"


async def _bounded(read: Any, what: str) -> Any:
    """Await one scrape-time read; None (and a log line) when its store fails or is slow."""
    try:
        return await asyncio.wait_for(read, SCRAPE_READ_TIMEOUT_SECONDS)
    except REDIS_ERRORS as exc:
        REDIS_FAILURES.labels(operation=what).inc()
        log.warning("metrics_read_failed", read=what, error=repr(exc))
    except Exception as exc:  # the database: any failure only costs these samples
        log.warning("metrics_read_failed", read=what, error=repr(exc))
    return None


async def _worker_totals(resources: Resources) -> str:
    stats = await _bounded(read_all(resources.redis), "job_stats") or {}
    heartbeats = await _bounded(read_heartbeats(resources.redis), "job_stats") or {}
    text = "".join(
        family_text(
            name,
            "counter",
            help_text,
            (({label: key}, value) for key, value in sorted(stats.get(family, {}).items())),
        )
        for family, (name, help_text, label) in FAMILIES.items()
    )
    return text + family_text(
        "taskpipe_heartbeat_timestamp_seconds",
        "gauge",
        "Unix time of the last heartbeat of the worker and of beat",
        (({"component": c}, at) for c, at in sorted(heartbeats.items())),
    )


async def _broker_queues(resources: Resources) -> str:
    async def read() -> tuple[list[int], int]:
        async with resources.broker.pipeline(transaction=False) as pipe:
            for queue in Queue.ALL:
                pipe.llen(queue)
            pipe.hlen(UNACKED_KEY)
            *depths, unacked = await pipe.execute()
        return [int(d) for d in depths], int(unacked)

    found = await _bounded(read(), "queue_depth")
    depths, unacked = found if found is not None else ([], None)
    text = family_text(
        "taskpipe_queue_depth",
        "gauge",
        "Jobs waiting in each broker queue",
        (({"queue": q}, float(d)) for q, d in zip(Queue.ALL, depths, strict=False)),
    )
    return text + family_text(
        "taskpipe_queue_unacknowledged_jobs",
        "gauge",
        "Jobs a worker has taken and not yet acknowledged",
        [({}, float(unacked))] if unacked is not None else [],
    )


async def _outbox(resources: Resources) -> str:
    async def read() -> OutboxState:
        async with resources.reads() as connection:
            return await outbox_state(connection)

    state: OutboxState | None = await _bounded(read(), "outbox")
    grace = int(OVERDUE_GRACE.total_seconds())
    families = (
        (
            "taskpipe_outbox_unfinished_jobs",
            "Jobs committed and not finished: queued, running or waiting for a retry",
            "unfinished",
        ),
        (
            "taskpipe_outbox_overdue_jobs",
            f"Jobs due for the outbox relay more than {grace} s ago and not published since",
            "overdue",
        ),
        (
            "taskpipe_outbox_oldest_overdue_job_seconds",
            "How long the longest-overdue job has been due (0 when none is)",
            "oldest_overdue_seconds",
        ),
        (
            "taskpipe_outbox_parked_jobs",
            "Jobs the relay no longer publishes (failed for good, or published too often)",
            "parked",
        ),
    )
    return "".join(
        family_text(name, "gauge", help_text, [({}, float(getattr(state, field)))] if state else [])
        for name, help_text, field in families
    )


def _process_metrics() -> bytes:
    if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry)
    return generate_latest(DEFAULT_REGISTRY)


async def render_metrics(resources: Resources) -> tuple[bytes, str]:
    shared = await asyncio.gather(
        _worker_totals(resources), _broker_queues(resources), _outbox(resources)
    )
    return _process_metrics() + "".join(shared).encode(), CONTENT_TYPE_LATEST
