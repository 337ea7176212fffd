"""The credentials file: written by `loadtests.seed`, read by the locustfile.

One row per seeded account: email, password, and the refresh token of a session the seed opened
for it, so a simulated user resumes that session (`POST /auth/refresh`, cheap) the way a real
client does, instead of every user paying a password login at once. Locust-free on purpose.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

from loadtests import env

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CREDENTIALS = REPO_ROOT / ".taskpipe" / "loadtest-credentials.csv"
FIELDS = ("email", "password", "refresh_token")


@dataclass(frozen=True, slots=True)
class Account:
    email: str
    password: str
    refresh_token: str | None = None


def credentials_path() -> Path:
    """`$TASKPIPE_LOADTEST_CREDENTIALS`, else `.taskpipe/loadtest-credentials.csv`."""
    return Path(os.environ.get(env.CREDENTIALS) or DEFAULT_CREDENTIALS)


def write_accounts(path: Path, accounts: list[Account]) -> None:
    """Write atomically (rename) and readable by the owner only: the rows are live credentials."""
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_name(path.name + ".tmp")
    descriptor = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(FIELDS)
        for account in accounts:
            writer.writerow((account.email, account.password, account.refresh_token or ""))
    staging.replace(path)


def read_accounts(path: Path) -> list[Account]:
    with path.open(newline="") as handle:
        return [
            Account(row["email"], row["password"], row.get("refresh_token") or None)
            for row in csv.DictReader(handle)
        ]
