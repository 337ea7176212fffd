"""Celery signal wiring: JSON logging, the request id in every job log line, heartbeats.

It imports nothing of the Celery app: `worker.app` imports this module and adds the heartbeat
step (the process's runtime disposes of itself: `worker.runtime`)."""

from __future__ import annotations

from typing import Any

import structlog
from celery import bootsteps
from celery.signals import setup_logging, task_postrun, task_prerun

from common.config import get_settings
from common.jobs import request_id_of
from common.logging import configure_logging, request_id_var
from worker.heartbeat import WORKER_BEAT_INTERVAL_SECONDS, touch


@setup_logging.connect
def _configure_logging(**_: Any) -> None:
    settings = get_settings()
    configure_logging(settings.log_level, json=settings.log_json)


@task_prerun.connect
def _bind_job_context(task: Any = None, task_id: str | None = None, **_: Any) -> None:
    request_id_var.set(request_id_of(getattr(task, "request", None)) or task_id)
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(task=getattr(task, "name", None), task_id=task_id)


@task_postrun.connect
def _clear_job_context(**_: Any) -> None:
    request_id_var.set(None)
    structlog.contextvars.clear_contextvars()


class WorkerHeartbeat(bootsteps.StartStopStep):
    """Touches the worker heartbeat file from the consumer's own timer: if the worker's
    main loop hangs, the file goes stale and the liveness probe restarts the pod."""

    requires = ("celery.worker.components:Timer",)

    def start(self, worker: Any) -> None:
        touch("worker")
        self._tref = worker.timer.call_repeatedly(
            WORKER_BEAT_INTERVAL_SECONDS, touch, ("worker",), priority=10
        )

    def stop(self, worker: Any) -> None:
        if getattr(self, "_tref", None) is not None:
            self._tref.cancel()
