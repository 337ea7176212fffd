"""Job outcomes by task, counted where every job ends: Celery's own signals, in the process that
ran it. The totals go to Redis (common.jobstats), where the API's /metrics reads them."""

from __future__ import annotations

from typing import Any

from celery.signals import task_failure, task_retry, task_success

from common.jobstats import sync_stats


def _task_name(sender: Any) -> str:
    return str(getattr(sender, "name", None) or "unknown")


@task_success.connect
def _count_success(sender: Any = None, **_: Any) -> None:
    sync_stats().add("jobs_succeeded", _task_name(sender))


@task_failure.connect
def _count_failure(sender: Any = None, **_: Any) -> None:
    sync_stats().add("jobs_failed", _task_name(sender))


@task_retry.connect
def _count_retry(sender: Any = None, **_: Any) -> None:
    sync_stats().add("jobs_retried", _task_name(sender))
