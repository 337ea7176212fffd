"""Naming and publishing background jobs, without importing worker code.

Jobs go through the transactional outbox (`OutboxJob`): the row is written with the data the job
is about, published to Celery by name after the commit, and deleted by the worker once the job
has finished; until then the relay publishes it again if its message is lost.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from celery import Celery

from common.config import Settings, get_settings
from common.logging import get_logger
from common.metrics import JOBS_ENQUEUED

log = get_logger(__name__)


class Queue:
    EMAIL = "email"
    MAINTENANCE = "maintenance"
    CACHE = "cache"
    WEBHOOKS = "webhooks"
    """Its own queue: a slow receiver (10 s a try) never delays a mail."""
    ALL = (EMAIL, MAINTENANCE, CACHE, WEBHOOKS)


class JobName:
    SEND_VERIFICATION_EMAIL = "taskpipe.email.send_verification"
    SEND_PASSWORD_RESET_EMAIL = "taskpipe.email.send_password_reset"
    SEND_DUE_REMINDERS = "taskpipe.email.send_due_reminders"
    SCAN_DUE_REMINDERS = "taskpipe.reminders.scan"
    PURGE_DELETED = "taskpipe.maintenance.purge_deleted"
    RELAY_OUTBOX = "taskpipe.maintenance.relay_outbox"
    WARM_USER_CACHE = "taskpipe.cache.warm_user"
    WARM_ACTIVE_USERS = "taskpipe.cache.warm_active_users"
    DELIVER_WEBHOOK = "taskpipe.webhooks.deliver"
    PURGE_WEBHOOK_DELIVERIES = "taskpipe.maintenance.purge_webhook_deliveries"
    SEND_WEBHOOK_DISABLED_EMAIL = "taskpipe.email.send_webhook_disabled"
    REVOKE_CREDENTIALS = "taskpipe.auth.revoke_credentials"
    SEND_EMAIL_CHANGE_LINK = "taskpipe.email.send_email_change"
    SEND_ACCOUNT_NOTICE = "taskpipe.email.send_account_notice"
    SEND_EXPORT_READY = "taskpipe.email.send_export_ready"
    BUILD_EXPORT = "taskpipe.accounts.build_export"
    ERASE_ACCOUNT = "taskpipe.accounts.erase"
    ERASE_DUE_ACCOUNTS = "taskpipe.accounts.erase_due"


@dataclass(frozen=True, slots=True)
class Job:
    task_name: str
    queue: str
    kwargs: dict[str, Any]
    id: uuid.UUID = field(default_factory=uuid.uuid4)
    request_id: str | None = None
    retries: int = 0
    """Carried into the message, so a retry handed back to the outbox keeps its count."""


def request_id_of(request: Any) -> str | None:
    """The API request id travelling in a job's message headers (set by `JobPublisher`), from
    Celery's request of the running task."""
    found = getattr(request, "request_id", None)
    if found is None:
        found = (getattr(request, "headers", None) or {}).get("request_id")
    return found if isinstance(found, str) else None


def create_producer(settings: Settings) -> Celery:
    """A Celery app used only to publish by name (the worker builds its own, full app)."""
    app = Celery("taskpipe-producer", broker=settings.celery_broker_url)
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        broker_connection_retry_on_startup=False,
        broker_connection_timeout=2,
        broker_transport_options={"socket_connect_timeout": 1, "socket_timeout": 2},
    )
    return app


class JobPublisher:
    def __init__(self, celery_app: Celery, *, redeliver_after: timedelta | None = None) -> None:
        self._app = celery_app
        self.redeliver_after = redeliver_after or timedelta(
            seconds=get_settings().outbox_redeliver_seconds
        )
        """How long a published job may take to finish before its outbox row is published
        again (its message may have been lost)."""

    def publish(self, job: Job) -> None:
        self._app.send_task(
            job.task_name,
            kwargs=job.kwargs,
            queue=job.queue,
            task_id=str(job.id),
            headers={"request_id": job.request_id} if job.request_id else None,
            retries=job.retries,
            retry=True,
            retry_policy={"max_retries": 1, "interval_start": 0, "interval_step": 0.2},
        )

    def publish_many(self, jobs: Sequence[Job]) -> list[uuid.UUID]:
        """Publish what the broker accepts; the rest stays in the outbox for the relay."""
        sent: list[uuid.UUID] = []
        for job in jobs:
            try:
                self.publish(job)
            except Exception as exc:  # kombu raises many types; the outbox keeps the job
                JOBS_ENQUEUED.labels(task=job.task_name, result="deferred").inc()
                log.warning(
                    "job_publish_deferred", task=job.task_name, job_id=str(job.id), error=repr(exc)
                )
                break
            JOBS_ENQUEUED.labels(task=job.task_name, result="sent").inc()
            sent.append(job.id)
        return sent

    async def publish_many_async(self, jobs: Sequence[Job]) -> list[uuid.UUID]:
        return await asyncio.to_thread(self.publish_many, jobs)
