"""Prometheus metrics shared by the API and the worker (API request metrics live in api/)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

REDIS_FAILURES = Counter(
    "taskpipe_redis_failures_total",
    "Redis operations that failed and were degraded around",
    ["operation"],
)
CACHE_REQUESTS = Counter(
    "taskpipe_cache_requests_total", "Cache lookups by kind and result", ["kind", "result"]
)
RATE_LIMIT_REJECTIONS = Counter(
    "taskpipe_rate_limit_rejections_total", "Requests refused by a rate limit", ["limit"]
)
JOBS_ENQUEUED = Counter(
    "taskpipe_jobs_enqueued_total", "Jobs handed to the broker", ["task", "result"]
)
REDIS_UP = Gauge(
    "taskpipe_redis_up",
    "1 when Redis answered this process's last check (readiness probe or scrape), else 0",
    multiprocess_mode="livemostrecent",
)
