"""The `taskpipe` operator command, run in-process against the test database and Redis."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from tests.support.smtp import SMTPServer
from worker.cli import main
from worker.runtime import shutdown_runtime


@pytest.fixture(autouse=True)
def _fresh_runtime(database: str, committed_data: None):  # type: ignore[no-untyped-def]
    yield
    shutdown_runtime()


def _json(capsys: pytest.CaptureFixture[str]) -> dict:  # type: ignore[type-arg]
    return json.loads(capsys.readouterr().out)


def test_users_create_then_duplicate(capsys: pytest.CaptureFixture[str]) -> None:
    args = [
        "users",
        "create",
        "--email",
        "Ops@Example.com",
        "--name",
        "Ops",
        "--password",
        "Correct-Horse-9",
    ]
    assert main([*args, "--verified"]) == 0
    created = _json(capsys)
    assert created["email"] == "ops@example.com"
    assert created["verified"] is True
    assert main(args) == 1
    assert "already exists" in capsys.readouterr().err


def test_users_create_refuses_a_weak_password(capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(["users", "create", "--email", "w@example.com", "--name", "W", "--password", "weak"])
        == 2
    )
    assert "at least 10" in capsys.readouterr().err


def test_jobs_run_each_job_in_process(capsys: pytest.CaptureFixture[str]) -> None:
    now = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    assert main(["jobs", "run", "purge", "--now", now]) == 0
    assert _json(capsys)["result"]["tasks"] == 0
    in_a_year = (datetime.now(UTC) + timedelta(days=365)).isoformat()
    assert main(["jobs", "run", "purge", "--now", in_a_year]) == 0
    assert _json(capsys)["result"]["action_tokens"] == 0
    assert main(["jobs", "run", "reminders", "--now", now]) == 0
    assert _json(capsys)["result"] == 0
    assert main(["jobs", "run", "relay"]) == 0
    assert _json(capsys)["result"] == 0
    assert main(["jobs", "list"]) == 0
    assert set(_json(capsys)) == {"purge", "reminders", "relay", "warm"}
    assert main(["jobs", "run", "warm", "--now", now]) == 0
    assert _json(capsys)["result"] == 0


def test_jobs_can_be_enqueued_for_the_workers(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["jobs", "run", "purge", "--enqueue"]) == 0
    assert _json(capsys)["enqueued"]
    assert main(["queues"]) == 0
    depths = _json(capsys)
    assert depths["queues"]["maintenance"] == 1
    assert depths["outbox"] == {
        "unfinished": 0,
        "overdue": 0,
        "oldest_overdue_seconds": 0.0,
        "parked": 0,
    }


def test_check_reports_each_dependency(
    capsys: pytest.CaptureFixture[str], smtp_server: SMTPServer
) -> None:
    assert main(["check"]) == 0
    report = _json(capsys)
    connect = report.pop("connect")
    assert report == {"database": "ok", "redis": "ok", "smtp": "ok"}
    assert connect["psql"].startswith("psql postgresql://")
    assert connect["redis-cli"].startswith("redis-cli -u redis://")
