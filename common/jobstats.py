"""Counters of work done by the workers, kept in Redis so the API's /metrics can show them.

Worker processes come and go and expose no HTTP port; a Redis hash per counter family is the
shared, durable-enough place for totals (Prometheus only needs them to grow monotonically).
Worker and beat also leave their last heartbeat time here, so a stalled scheduler shows in
/metrics, not only in its own container's liveness file.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from functools import cache

import redis
from redis.asyncio import Redis

from common.config import get_settings
from common.logging import get_logger
from common.metrics import REDIS_FAILURES
from common.redis import REDIS_ERRORS

log = get_logger(__name__)

PREFIX = "taskpipe:stats:"
# family -> (metric name, help text, label name)
FAMILIES: dict[str, tuple[str, str, str]] = {
    "purged_rows": ("taskpipe_purged_rows_total", "Rows removed by the purge job", "table"),
    "reminders": ("taskpipe_reminders_total", "Due-date reminder outcomes", "outcome"),
    "mails": ("taskpipe_mails_total", "Mails by kind", "kind"),
    "webhooks": (
        "taskpipe_webhook_deliveries_total",
        "Webhook delivery attempts by outcome: delivered, retry (planned), failed (for good)",
        "outcome",
    ),
    "accounts": (
        "taskpipe_accounts_total",
        "Account lifecycle events done by the workers (erased: all that remains of one)",
        "event",
    ),
    "jobs_succeeded": ("taskpipe_jobs_succeeded_total", "Jobs that finished, by task", "task"),
    "jobs_failed": ("taskpipe_jobs_failed_total", "Jobs that failed for good, by task", "task"),
    "jobs_retried": ("taskpipe_jobs_retried_total", "Job retries scheduled, by task", "task"),
    "jobs": (
        "taskpipe_job_events_total",
        "Job events worth an operator's eye: mails sent again after an unfinished attempt, "
        "webhook endpoints disabled after days of failures",
        "event",
    ),
}
HEARTBEATS = PREFIX + "heartbeat"


async def record(redis: Redis, family: str, counts: Mapping[str, int]) -> None:
    """Add `counts` to a family's totals; a Redis failure only costs the statistic."""
    if family not in FAMILIES:
        raise ValueError(f"unknown stats family {family!r}")
    try:
        async with redis.pipeline(transaction=False) as pipe:
            for label, count in counts.items():
                if count:
                    pipe.hincrby(PREFIX + family, label, count)
            await pipe.execute()
    except REDIS_ERRORS as exc:
        REDIS_FAILURES.labels(operation="job_stats").inc()
        log.warning("job_stats_unavailable", family=family, error=str(exc))


async def read_all(redis: Redis) -> dict[str, dict[str, int]]:
    async with redis.pipeline(transaction=False) as pipe:
        for family in FAMILIES:
            pipe.hgetall(PREFIX + family)
        values = await pipe.execute()
    return {
        family: {key.decode(): int(value) for key, value in raw.items()}
        for family, raw in zip(FAMILIES, values, strict=True)
    }


async def read_heartbeats(redis: Redis) -> dict[str, float]:
    """Component -> Unix time of its last heartbeat."""
    raw = await redis.hgetall(HEARTBEATS)
    return {
        key.decode() if isinstance(key, bytes) else key: float(value) for key, value in raw.items()
    }


class SyncStats:
    """The same counters and heartbeats for code that runs outside any event loop (Celery
    signal handlers, beat's scheduler tick). One client per process, created on first use."""

    def __init__(self, url: str) -> None:
        self._url = url
        self._client: redis.Redis | None = None
        self._pid = 0

    def _redis(self) -> redis.Redis:
        if self._client is None or self._pid != os.getpid():
            self._client = redis.Redis.from_url(
                self._url, socket_connect_timeout=0.5, socket_timeout=0.5
            )
            self._pid = os.getpid()
        return self._client

    def add(self, family: str, label: str) -> None:
        if family not in FAMILIES:
            raise ValueError(f"unknown stats family {family!r}")
        self._write(family, lambda client: client.hincrby(PREFIX + family, label, 1))

    def heartbeat(self, component: str) -> None:
        self._write("heartbeat", lambda client: client.hset(HEARTBEATS, component, time.time()))

    def _write(self, what: str, command: Callable[[redis.Redis], object]) -> None:
        try:
            command(self._redis())
        except REDIS_ERRORS as exc:
            REDIS_FAILURES.labels(operation="job_stats").inc()
            log.warning("job_stats_unavailable", family=what, error=str(exc))


@cache
def sync_stats() -> SyncStats:
    """This process's writer, on the Redis of the settings it started with."""
    return SyncStats(get_settings().redis_url)
