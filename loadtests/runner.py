"""The load-test runner's ground rules: where things are, how it logs, how a run fails."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REPORTS = ROOT / "loadtests" / "reports"
LOCUSTFILE = ROOT / "loadtests" / "locustfile.py"
LOCK_FILE = ROOT / ".taskpipe" / "loadtest.lock"
PY = sys.executable
UNDER_DEVSTACK = "TASKPIPE_LOADTEST_UNDER_DEVSTACK"


class RunError(Exception):
    """The run could not be done (not: the service was too slow)."""


def log(message: str) -> None:
    print(f"loadtest: {message}", file=sys.stderr, flush=True)
