"""The numbers that bound a job's delay after a crash, and keep it from running twice."""

from __future__ import annotations

import asyncpg
import pytest
from sqlalchemy.exc import DBAPIError

from common.config import Settings
from common.jobs import JobName
from worker.app import app
from worker.mail.tasks import MAIL_RETRY
from worker.policy import DATABASE_RETRY, countdown_limit


def test_a_killed_worker_s_jobs_come_back_within_five_minutes() -> None:
    """The visibility timeout plus the sweep that finds a job past it (every 10 s,
    `worker/app.py`)."""
    assert Settings().broker_visibility_timeout + 10 <= 300


def test_no_job_runs_or_waits_longer_than_the_broker_holds_it() -> None:
    """Hard time limit plus the longest countdown Celery holds stays below the visibility
    timeout: a running or waiting job is never handed out a second time."""
    visibility = Settings().broker_visibility_timeout
    assert app.conf.broker_transport_options["visibility_timeout"] == visibility
    tasks = [task for name, task in app.tasks.items() if name.startswith("taskpipe.")]
    named = {value for key, value in vars(JobName).items() if key.isupper()}
    assert {task.name for task in tasks} == named  # every job is registered, and checked here
    for task in tasks:
        limit = task.time_limit or app.conf.task_time_limit
        assert limit + countdown_limit() < visibility, task.name


def test_the_outbox_publishes_again_only_after_the_broker_would_have() -> None:
    settings = Settings()
    assert settings.outbox_redeliver_seconds > settings.broker_visibility_timeout


@pytest.mark.parametrize("retries", range(14))
def test_retry_delays_grow_with_jitter_and_stay_capped(retries: int) -> None:
    step = min(600, MAIL_RETRY.backoff_seconds * 2**retries)
    delays = [MAIL_RETRY.delay(retries) for _ in range(50)]
    assert all(step / 2 <= delay <= step for delay in delays)


def _dropped_connection() -> DBAPIError:
    error = DBAPIError("SELECT 1", None, Exception("connection was closed"))
    error.connection_invalidated = True
    return error


@pytest.mark.parametrize(
    "error",
    [
        _dropped_connection(),
        ConnectionRefusedError(),
        asyncpg.exceptions.ConnectionDoesNotExistError("gone"),
        asyncpg.exceptions.CannotConnectNowError("starting up"),
    ],
)
def test_every_job_retries_when_postgresql_is_out_of_reach(error: BaseException) -> None:
    assert DATABASE_RETRY.retryable(error)
    assert MAIL_RETRY.retryable(error)


def test_a_bug_is_not_retried() -> None:
    assert not DATABASE_RETRY.retryable(ValueError("bug"))
    assert not DATABASE_RETRY.retryable(DBAPIError("SELECT 1", None, Exception("syntax")))
