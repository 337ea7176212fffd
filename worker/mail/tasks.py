"""The Celery decorator shared by every job that sends mail."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from celery import Task

from common.config import get_settings
from worker.app import app
from worker.mail.sender import SMTP_ERRORS


def mail_task(name: str) -> Callable[[Callable[..., Any]], Task[Any, Any]]:
    """Register a mail job: SMTP and connection hiccups are retried with exponential backoff
    and full jitter (5 s doubling by default, capped at 10 min: about 1 h 20 min of retries)
    before the job gives up and logs it."""
    return app.task(
        name=name,
        autoretry_for=SMTP_ERRORS,
        retry_backoff=get_settings().mail_retry_backoff_seconds,
        retry_backoff_max=600,
        retry_jitter=True,
        max_retries=12,
    )
