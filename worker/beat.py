"""Beat scheduler that also proves it is alive (its heartbeat file) on every tick."""

from __future__ import annotations

from typing import Any

from celery.beat import PersistentScheduler

from worker.heartbeat import touch


class HeartbeatScheduler(PersistentScheduler):
    max_interval = 15

    def tick(self, *args: Any, **kwargs: Any) -> float:
        touch("beat")
        return float(super().tick(*args, **kwargs))
