"""`taskpipe` as a newcomer runs it: beside `make run`, or with nothing running at all.

Run as a separate process, the way a person runs it, with no TASKPIPE_* settings of its own
except where the test says so.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from devstack.machine import free_port
from tests.support.worker import ROOT

TASKPIPE = Path(sys.executable).with_name("taskpipe")


def bare_environment(**settings: str) -> dict[str, str]:
    """This process's environment without any Taskpipe setting, plus `settings`."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("TASKPIPE_")}
    return {**env, **settings}


def without_a_stack(tmp_path: Path, **settings: str) -> dict[str, str]:
    """No `make run` beside it: the stack file it would look for does not exist."""
    return bare_environment(TASKPIPE_STACK_FILE=str(tmp_path / "none.json"), **settings)


def taskpipe(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(TASKPIPE), *args],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        start_new_session=True,  # no controlling terminal, as in CI or a cron job
    )


def write_stack_file(path: Path, pid: int, environment: dict[str, str]) -> Path:
    path.write_text(
        json.dumps(
            {
                "pid": pid,
                "environment": environment,
                "connect": {"psql": "psql postgresql://stack", "redis-cli": "redis-cli -u stack"},
            }
        )
    )
    return path


def test_the_servers_of_a_running_stack_are_found_through_its_state_file(
    tmp_path: Path, database: str
) -> None:
    stack_file = write_stack_file(
        tmp_path / "stack.json",
        os.getpid(),  # alive for as long as the test runs, like a running devstack
        {
            "TASKPIPE_ENV": "development",
            "TASKPIPE_DATABASE_URL": os.environ["TASKPIPE_DATABASE_URL"],
            "TASKPIPE_REDIS_URL": os.environ["TASKPIPE_REDIS_URL"],
        },
    )
    done = taskpipe("queues", env=bare_environment(TASKPIPE_STACK_FILE=str(stack_file)))
    assert done.returncode == 0, done.stderr
    assert set(json.loads(done.stdout)) == {"queues", "unacknowledged", "outbox"}

    checked = taskpipe(
        "check",
        env=bare_environment(TASKPIPE_ENV="development", TASKPIPE_STACK_FILE=str(stack_file)),
    )
    report = json.loads(checked.stdout)
    assert (report["database"], report["redis"]) == ("ok", "ok")
    assert report["connect"] == {
        "psql": "psql postgresql://stack",
        "redis-cli": "redis-cli -u stack",
    }


def test_a_state_file_left_by_a_dead_stack_is_ignored(tmp_path: Path) -> None:
    stack_file = write_stack_file(
        tmp_path / "stack.json",
        2**22 + 1,  # above the kernel's default pid_max: no such process
        {"TASKPIPE_DATABASE_URL": "postgresql+asyncpg://postgres@127.0.0.1:1/never"},
    )
    checked = taskpipe(
        "check",
        env=bare_environment(TASKPIPE_ENV="development", TASKPIPE_STACK_FILE=str(stack_file)),
    )
    assert "Traceback" not in checked.stderr
    report = json.loads(checked.stdout)
    assert report["connect"]["psql"] == "psql postgresql://postgres@127.0.0.1:5432/taskpipe"


def test_without_a_stack_an_unreachable_database_is_one_clear_message(tmp_path: Path) -> None:
    unused = free_port()
    done = taskpipe(
        "queues",
        env=without_a_stack(
            tmp_path,
            TASKPIPE_ENV="development",
            TASKPIPE_DATABASE_URL=f"postgresql+asyncpg://postgres@127.0.0.1:{unused}/taskpipe",
        ),
    )
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert f"cannot reach PostgreSQL at postgresql+asyncpg://postgres@127.0.0.1:{unused}" in (
        done.stderr
    )
    assert "make run" in done.stderr
    assert "TASKPIPE_DATABASE_URL" in done.stderr


def test_an_unreachable_redis_is_one_clear_message(tmp_path: Path) -> None:
    unused = free_port()
    done = taskpipe(
        "jobs",
        "run",
        "purge",
        "--enqueue",
        env=without_a_stack(
            tmp_path,
            TASKPIPE_ENV="development",
            TASKPIPE_REDIS_URL=f"redis://:secret@127.0.0.1:{unused}/0",
        ),
    )
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert f"cannot reach Redis at redis://:***@127.0.0.1:{unused}/0" in done.stderr
    assert "secret" not in done.stderr
    assert "TASKPIPE_REDIS_URL" in done.stderr


def test_settings_it_cannot_use_are_explained(tmp_path: Path) -> None:
    done = taskpipe("jobs", "list", env=without_a_stack(tmp_path, TASKPIPE_ENV="production"))
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert "TASKPIPE_JWT_SECRET" in done.stderr
    assert "make run" in done.stderr


def test_creating_a_user_without_a_password_or_a_terminal_says_so(tmp_path: Path) -> None:
    create = ("users", "create", "--email", "no.tty@example.com", "--name", "No TTY")
    done = taskpipe(*create, env=without_a_stack(tmp_path, TASKPIPE_ENV="development"))
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert "no terminal to ask for the password" in done.stderr
    assert "--password" in done.stderr
