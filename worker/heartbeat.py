"""Heartbeat files that k8s liveness probes read (`python -m worker.healthcheck`), also left in
Redis so /metrics shows when the worker or beat was last alive."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from common.config import get_settings
from common.jobstats import sync_stats

Component = Literal["worker", "beat"]
STALE_AFTER_SECONDS = {"worker": 90, "beat": 90}
WORKER_BEAT_INTERVAL_SECONDS = 20


def heartbeat_path(component: Component) -> Path:
    return Path(get_settings().heartbeat_dir) / f"taskpipe-{component}-heartbeat"


def touch(component: Component) -> None:
    heartbeat_path(component).touch()
    sync_stats().heartbeat(component)
