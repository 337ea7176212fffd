"""The Celery application (`celery -A worker.app worker|beat`).

Configured for at-least-once delivery of idempotent jobs: late acks, requeue when a worker
process dies, prefetch of one, JSON only, time limits on everything. The broker's visibility
timeout (5 min by default) bounds how long the jobs of a worker killed outright wait before
they are handed out again; every job's hard time limit plus the longest countdown Celery holds
for a retry (a fifth of it, `worker.policy`) stays below it, so a running or waiting job is
never handed out twice. Reminders are rows scanned by beat, never long ETAs (see DESIGN.md).
"""

from __future__ import annotations

from celery import Celery
from celery.schedules import crontab
from kombu import Exchange
from kombu import Queue as KombuQueue

import worker.jobmetrics  # noqa: F401  (job outcomes by task, for /metrics)
from common.config import get_settings
from common.jobs import JobName, Queue
from worker.signals import WorkerHeartbeat  # and logging and request id wiring

settings = get_settings()

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
        "taskpipe.auth.*": {"queue": Queue.CACHE},
        "taskpipe.accounts.*": {"queue": Queue.MAINTENANCE},
    },
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
