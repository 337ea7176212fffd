"""Run Flower behind basic auth from settings: `python -m worker.flower`.

The credentials go through Flower's environment (FLOWER_BASIC_AUTH), not argv, so they do not
show in `ps`. Flower serves its Prometheus `/metrics` (worker names, task names and counts,
queue figures) outside basic auth; here that handler asks for the same credentials as every
page. `/healthcheck` stays open for probes: it says "OK" and nothing else. A Prometheus that
scrapes Flower sends basic auth (`basic_auth` in its scrape config).
"""

from __future__ import annotations

import os
import sys

from celery.bin.celery import main as celery_main
from flower.views.monitor import Metrics
from tornado.web import authenticated

from common.config import Settings, get_settings


def flower_argv(settings: Settings) -> list[str]:
    return [
        "celery",
        "-A",
        "worker.app",
        "flower",
        f"--address={settings.flower_address}",
        f"--port={settings.flower_port}",
    ]


def protect_flower_metrics() -> None:
    """Flower's `/metrics` handler asks for basic auth, as its pages do."""
    if not getattr(Metrics.get, "__wrapped__", None):
        Metrics.get = authenticated(Metrics.get)


def main() -> None:  # pragma: no cover - runs until stopped (tests/worker/test_flower.py)
    settings = get_settings()
    os.environ["FLOWER_BASIC_AUTH"] = (
        f"{settings.flower_user}:{settings.flower_password.get_secret_value()}"
    )
    protect_flower_metrics()
    sys.argv = flower_argv(settings)
    celery_main()


if __name__ == "__main__":  # pragma: no cover
    main()
