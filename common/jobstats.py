"""Counters of work done by the workers, kept in Redis so the API's /metrics can show them.

Worker processes come and go and expose no HTTP port; a Redis hash per counter family is the
shared, durable-enough place for totals (Prometheus only needs them to grow monotonically).
"""

from __future__ import annotations

from collections.abc import Mapping

from redis.asyncio import Redis

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
    "jobs": (
        "taskpipe_job_events_total",
        "Job events worth an operator's eye: mails sent again after an unfinished attempt",
        "event",
    ),
}


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
