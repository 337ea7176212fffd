"""The Celery application (`celery -A worker.app worker|beat`).

Configured for at-least-once delivery of idempotent jobs: late acks, requeue when a worker
process dies, prefetch of one, JSON only, time limits on everything. The broker's visibility
timeout (5 min by default) bounds how long the jobs of a worker killed outright wait before
they are handed out again; every job's hard time limit plus the longest countdown Celery holds
for a retry (a fifth of it, `worker.policy`) stays below it, so a running or waiting job is
never handed out twice. Reminders are rows scanned by beat, never long ETAs (see DESIGN.md).
"""

from __future__ import annotations

import contextlib
from typing import Any

from celery import Celery
from celery.schedules import crontab
from celery.utils.threads import bound_open_broker_sockets  # type: ignore[attr-defined]
from celery.worker.consumer import Consumer as CeleryConsumer
from celery.worker.consumer.consumer import COLLECT_SOCKET_TIMEOUT  # type: ignore[attr-defined]
from kombu import Exchange
from kombu import Queue as KombuQueue

import worker.jobmetrics  # noqa: F401  (job outcomes by task, for /metrics)
from common.config import get_settings
from common.jobs import JobName, Queue
from worker.signals import WorkerHeartbeat  # and logging and request id wiring

settings = get_settings()


class Consumer(CeleryConsumer):
    """Celery 5.7's consumer without its crash on losing a Redis broker.

    After a connection error Celery collects the connection, which closes its channel, then
    closes the connection again. When the dead socket cut the first close short (the pending
    BRPOP read fails), the second one restores the unacknowledged messages through a pool on
    the transport that collect() already detached: AttributeError, "Unrecoverable error", and
    the worker stops for good. Collecting here first and forgetting the channel makes that
    second close a no-op; the unacknowledged messages come back after the visibility timeout
    (the broker was down: they could not be restored anyway). Remove once Celery or kombu no
    longer closes a collected connection's channel (tests/worker/test_broker_loss.py)."""

    def on_connection_error_after_connected(self, exc: Exception) -> None:
        connection: Any = self.connection
        if connection is not None:
            bound_open_broker_sockets(connection, COLLECT_SOCKET_TIMEOUT)
            with contextlib.suppress(Exception):  # as Celery's own cleanup: best effort
                connection.collect(socket_timeout=COLLECT_SOCKET_TIMEOUT)
            connection._default_channel = None
        super().on_connection_error_after_connected(exc)


app = Celery("taskpipe", broker=settings.celery_broker_url)
app.conf.update(
    task_serializer="json",
    accept_content=["json"],
    result_serializer="json",
    task_ignore_result=True,
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    task_acks_on_failure_or_timeout=True,
    worker_prefetch_multiplier=1,
    task_soft_time_limit=150,
    task_time_limit=180,
    broker_transport_options={
        "visibility_timeout": settings.broker_visibility_timeout,
        # Every worker scans for messages held past the visibility timeout every 10 s
        # (kombu's default scans on every 10th tick only, ~100 s): the jobs of a worker killed
        # outright come back within the visibility timeout plus 10 s.
        "unacked_restore_throttle": 1,
        "socket_connect_timeout": 5,
    },
    broker_connection_retry_on_startup=True,
    task_default_queue=Queue.MAINTENANCE,
    task_queues=[KombuQueue(name, Exchange(name), routing_key=name) for name in Queue.ALL],
    task_routes={
        # The relay mostly carries stranded mails: it must not wait behind an hourly purge.
        "taskpipe.maintenance.relay_outbox": {"queue": Queue.EMAIL},
        "taskpipe.email.*": {"queue": Queue.EMAIL},
        "taskpipe.reminders.*": {"queue": Queue.EMAIL},
        "taskpipe.maintenance.*": {"queue": Queue.MAINTENANCE},
        "taskpipe.cache.*": {"queue": Queue.CACHE},
        "taskpipe.webhooks.*": {"queue": Queue.WEBHOOKS},
        "taskpipe.auth.*": {"queue": Queue.CACHE},
        "taskpipe.accounts.*": {"queue": Queue.MAINTENANCE},
    },
    worker_consumer=Consumer,
    worker_hijack_root_logger=False,
    worker_send_task_events=True,
    task_send_sent_event=True,
    worker_concurrency=settings.worker_concurrency,
    beat_scheduler="worker.beat:HeartbeatScheduler",
    beat_schedule_filename=f"{settings.heartbeat_dir}/taskpipe-beat-schedule",
    beat_schedule={
        "relay-outbox": {"task": JobName.RELAY_OUTBOX, "schedule": 30.0},
        "scan-due-reminders": {"task": JobName.SCAN_DUE_REMINDERS, "schedule": 60.0},
        "purge-deleted": {"task": JobName.PURGE_DELETED, "schedule": crontab(minute="7")},
        "warm-active-users": {"task": JobName.WARM_ACTIVE_USERS, "schedule": 600.0},
        "purge-webhook-deliveries": {
            "task": JobName.PURGE_WEBHOOK_DELIVERIES,
            "schedule": crontab(minute="37"),
        },
        "erase-due-accounts": {
            "task": JobName.ERASE_DUE_ACCOUNTS,
            "schedule": crontab(minute="17"),
        },
    },
    timezone="UTC",
    enable_utc=True,
)
app.steps["worker"].add(WorkerHeartbeat)
app.autodiscover_tasks(["worker"], related_name="tasks", force=True)
