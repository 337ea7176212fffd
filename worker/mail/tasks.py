"""The policy shared by every job that sends mail."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from billiard.exceptions import SoftTimeLimitExceeded
from celery import Task

from common.config import get_settings
from worker.mail.delivery import MailInFlight
from worker.mail.sender import SMTP_ERRORS
from worker.policy import JobBody, RetryPolicy, job

MAIL_RETRY = RetryPolicy(
    retry_on=(*SMTP_ERRORS, MailInFlight, SoftTimeLimitExceeded),
    max_retries=12,
    backoff_seconds=get_settings().mail_retry_backoff_seconds,
    backoff_max_seconds=600,
    keep_failed=True,
)
"""SMTP and connection hiccups (and a PostgreSQL outage): 5 s doubling by default, capped at
10 min, 12 retries (about 45 min in all) before the job gives up and logs it. Retries longer
than the broker may hold wait in the outbox. A mail job that failed for good stays parked in
the outbox until an operator publishes it again: a mail is never dropped."""


def mail_task(name: str) -> Callable[[JobBody], Task[Any, Any]]:
    """Register a mail job. One mail: at most a minute of work (SMTP timeouts included)."""
    return job(name, soft_time_limit=60, time_limit=90, policy=MAIL_RETRY)
