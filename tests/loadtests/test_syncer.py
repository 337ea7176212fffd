"""The syncing client of the scenario against a real server: one simulated app for a few
seconds (a functional check of its requests and checks, not a load test)."""

from __future__ import annotations

import asyncio
import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest

from common.config import Settings
from loadtests import env
from loadtests.accounts import write_accounts
from loadtests.seed import SeedOptions, seed
from tests.support.api_server import api_server

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.usefixtures("committed_data")


async def test_a_syncing_app_syncs_polls_writes_and_sees_its_writes_in_the_feed(
    settings: Settings, tmp_path: Path
) -> None:
    result = await seed(settings, SeedOptions(users=1, tasks_per_user=150, categories_per_user=3))
    credentials = tmp_path / "credentials.csv"
    write_accounts(credentials, result.accounts)

    with api_server() as base_url:
        run = await asyncio.to_thread(
            subprocess.run,
            [
                sys.executable,
                "-m",
                "locust",
                "-f",
                "loadtests/locustfile.py",
                "Syncer",
                "--headless",
                "--users",
                "1",
                "--spawn-rate",
                "1",
                "--run-time",
                "5s",
                "--host",
                base_url,
                "--csv",
                str(tmp_path / "run"),
                "--only-summary",
            ],
            cwd=ROOT,
            env={**os.environ, env.CREDENTIALS: str(credentials), env.THINK: "0.02,0.05"},
            capture_output=True,
            text=True,
            timeout=90,
            check=False,
        )

    with (tmp_path / "run_stats.csv").open() as handle:
        stats = {(row["Type"], row["Name"]): row for row in csv.DictReader(handle)}
    failures = (tmp_path / "run_failures.csv").read_text()
    assert run.returncode == 0, run.stderr[-2000:] + failures
    total = stats[("", "Aggregated")]
    assert int(total["Failure Count"]) == 0, failures
    polls = int(stats[("GET", "/api/v1/sync")]["Request Count"])
    assert polls >= 5, "the app synced on start (two pages) and polled"
    assert int(stats[("POST", "/api/v1/tasks/batch")]["Request Count"]) >= 1
