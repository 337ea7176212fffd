"""Seed accounts, categories, tasks and open sessions for a load test, fast and re-runnable.

    python -m loadtests.seed --users 1000 --tasks-per-user 100 [--credentials PATH]

Reads the database and JWT settings from the same `TASKPIPE_*` variables as the app. Direct SQL
(COPY) with ONE Argon2id hash computed at the app's cost for every account: hashing 1000
passwords one by one would take a minute of CPU and prove nothing. The login path
itself stays in the scenario.

For each account it also opens a session (a refresh-token family and its first refresh token,
exactly the rows `POST /auth/login` writes) and puts the refresh token in the credentials file,
so simulated users resume sessions as real clients do. Refresh tokens rotate on use, so re-seed
before each run (`loadtests.run` does).

Idempotent: accounts are `<prefix>-NNNNNN@example.com`; re-running keeps the accounts (and their
ids), replaces their tasks, categories and sessions, and removes seeded accounts beyond `--users`,
so the database ends up in the same shape whatever ran before. The seed writes behind the
app's cache: restart the app (or flush its Redis database) after seeding a database it serves.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import gc
import itertools
import os
import random
import re
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from common.auth.tokens import hash_token, issue_token
from common.config import Settings, get_settings
from common.security.passwords import argon2id
from loadtests.accounts import Account, credentials_path, write_accounts
from loadtests.content import CATEGORIES, task_description, task_title

EMAIL_DOMAIN = "example.com"
DEFAULT_PASSWORD = "Loadtest-Passw0rd!"
DEFAULT_PREFIX = "loadtest"
STATUS_MIX = (("pending", 50), ("in_progress", 20), ("completed", 25), ("cancelled", 5))
PRIORITY_MIX = ((1, 30), (2, 50), (3, 20))  # low, medium, high as stored (rank)
VERSION_MIX = ((1, 50), (2, 25), (3, 12), (4, 8), (5, 5))
LINKS_PER_TASK_MIX = ((0, 50), (1, 35), (2, 15))
DUE_DATE_SHARE = 0.7
HISTORY = timedelta(days=90)
Row = tuple[Any, ...]
ANALYZED = (
    "users",
    "tasks",
    "categories",
    "task_categories",
    "refresh_token_families",
    "change_feed",
)

USER_COLUMNS = (
    "id", "email", "password_hash", "full_name", "email_verified_at",
    "password_changed_at", "created_at", "updated_at",
)  # fmt: skip
CATEGORY_COLUMNS = ("id", "user_id", "name", "color", "created_at", "updated_at")
TASK_COLUMNS = (
    "id", "user_id", "title", "description", "status", "priority", "due_date", "completed_at",
    "reminder_sent_at", "version", "created_at", "updated_at",
)  # fmt: skip
LINK_COLUMNS = ("task_id", "category_id")
FAMILY_COLUMNS = ("id", "user_id", "created_at")
REFRESH_COLUMNS = ("id", "family_id", "token_hash", "expires_at", "created_at")
FEED_COLUMNS = ("user_id", "kind", "entity_id", "seq", "op", "changed_at")
COUNTER_COLUMNS = ("user_id", "last_seq")

# Seeded accounts: upserted, so their ids survive a re-seed.
UPSERT_USERS = """
INSERT INTO users (id, email, password_hash, full_name, email_verified_at,
                   password_changed_at, created_at, updated_at)
SELECT id, email, password_hash, full_name, email_verified_at,
       password_changed_at, created_at, updated_at
FROM seed_users
ON CONFLICT (email) DO UPDATE
SET password_hash = EXCLUDED.password_hash, full_name = EXCLUDED.full_name,
    email_verified_at = EXCLUDED.email_verified_at, updated_at = EXCLUDED.updated_at
RETURNING id, email
"""
# Set-based deletes, children first: deleting users would cascade row by row, and tasks has no
# plain index on user_id (only partial ones), so each cascaded user would scan the whole table.
CLEAR_DATA = (
    """DELETE FROM task_categories tc USING tasks t
       WHERE tc.task_id = t.id AND t.user_id = ANY($1::uuid[])""",
    "DELETE FROM tasks WHERE user_id = ANY($1::uuid[])",
    "DELETE FROM change_feed WHERE user_id = ANY($1::uuid[])",
    "DELETE FROM change_counters WHERE user_id = ANY($1::uuid[])",
    "DELETE FROM categories WHERE user_id = ANY($1::uuid[])",
    "DELETE FROM refresh_token_families WHERE user_id = ANY($1::uuid[])",
    "DELETE FROM action_tokens WHERE user_id = ANY($1::uuid[])",
)
SEEDED_IDS = "SELECT id FROM users WHERE email LIKE $1"
DELETE_USERS = "DELETE FROM users WHERE id = ANY($1::uuid[])"


@dataclass(frozen=True)
class SeedOptions:
    users: int
    tasks_per_user: int
    categories_per_user: int = 5
    prefix: str = DEFAULT_PREFIX
    password: str = DEFAULT_PASSWORD
    sessions: bool = True
    random_seed: int = 1


@dataclass
class SeedResult:
    accounts: list[Account]
    users: int
    tasks: int
    categories: int
    links: int
    removed_users: int
    seconds: float
    timings: dict[str, float] = field(default_factory=dict)


_ID_SOURCE = random.Random(int.from_bytes(os.urandom(16), "big"))


def new_id() -> uuid.UUID:
    """A random UUID (v4) without a syscall each: the seed makes 100k+ of them."""
    return uuid.UUID(int=_ID_SOURCE.getrandbits(128), version=4)


def email_for(prefix: str, index: int) -> str:
    return f"{prefix}-{index:06d}@{EMAIL_DOMAIN}"


class _Mix:
    """A weighted choice with its cumulative weights computed once (the seed draws 100k+)."""

    def __init__(self, mix: Sequence[tuple[Any, int]]) -> None:
        self.values = [value for value, _ in mix]
        self.cumulative = list(itertools.accumulate(weight for _, weight in mix))

    def draw(self, rng: random.Random) -> Any:
        return self.values[bisect.bisect(self.cumulative, rng.random() * self.cumulative[-1])]


_STATUS, _PRIORITY, _VERSION, _LINKS = map(
    _Mix, (STATUS_MIX, PRIORITY_MIX, VERSION_MIX, LINKS_PER_TASK_MIX)
)


def _between(rng: random.Random, start: datetime, end: datetime) -> datetime:
    return start + (end - start) * rng.random()


def _task_rows(
    rng: random.Random, user_id: uuid.UUID, count: int, category_ids: list[uuid.UUID], now: datetime
) -> tuple[list[Row], list[Row]]:
    """Tasks of one user in a plausible mix, and their category links (0-2 per task)."""
    tasks: list[Row] = []
    links: list[Row] = []
    for _ in range(count):
        task_id = new_id()
        created = _between(rng, now - HISTORY, now - timedelta(minutes=5))
        updated = _between(rng, created, now - timedelta(minutes=1))
        status = _STATUS.draw(rng)
        due = None
        if rng.random() < DUE_DATE_SHARE:
            due = _between(rng, now - timedelta(days=30), now + timedelta(days=60))
        # What the reminder scan would already have done: due tasks in the past were reminded.
        reminded = due - timedelta(hours=1) if due is not None and due <= now else None
        tasks.append(
            (
                task_id,
                user_id,
                task_title(rng),
                task_description(rng),
                status,
                _PRIORITY.draw(rng),
                due,
                updated if status == "completed" else None,
                reminded,
                _VERSION.draw(rng),
                created,
                updated,
            )
        )
        picked = rng.sample(category_ids, min(len(category_ids), _LINKS.draw(rng)))
        links.extend((task_id, category_id) for category_id in picked)
    return tasks, links


def _open_session(settings: Settings, user_id: uuid.UUID, now: datetime) -> tuple[Row, Row, str]:
    """The rows `POST /auth/login` writes for a new session, and its refresh token."""
    family_id = new_id()
    token, claims = issue_token(
        settings, user_id=user_id, token_type="refresh", family_id=family_id, now=now
    )
    family = (family_id, user_id, now)
    refresh = (claims.token_id, family_id, hash_token(token), claims.expires_at, now)
    return family, refresh, token


@dataclass
class _Rows:
    """Everything the seed COPYs, table by table, plus the accounts for the credentials file."""

    categories: list[Row] = field(default_factory=list)
    tasks: list[Row] = field(default_factory=list)
    links: list[Row] = field(default_factory=list)
    families: list[Row] = field(default_factory=list)
    refresh_tokens: list[Row] = field(default_factory=list)
    feed: list[Row] = field(default_factory=list)
    counters: list[Row] = field(default_factory=list)
    accounts: list[Account] = field(default_factory=list)

    def enter_in_feed(self, user_id: uuid.UUID, categories: list[Row], tasks: list[Row]) -> None:
        """What the API's writes would have left in the change feed: one upsert per category
        and task, numbered in order (a syncing client's full sync finds them all)."""
        entries = [("category", row[0], row[5]) for row in categories]
        entries += [("task", row[0], row[11]) for row in sorted(tasks, key=lambda r: r[11])]
        for seq, (kind, entity_id, changed_at) in enumerate(entries, start=1):
            self.feed.append((user_id, kind, entity_id, seq, "upsert", changed_at))
        self.counters.append((user_id, len(entries)))

    def tables(self) -> list[tuple[str, list[Row], tuple[str, ...]]]:
        return [
            ("categories", self.categories, CATEGORY_COLUMNS),
            ("tasks", self.tasks, TASK_COLUMNS),
            ("task_categories", self.links, LINK_COLUMNS),
            ("refresh_token_families", self.families, FAMILY_COLUMNS),
            ("refresh_tokens", self.refresh_tokens, REFRESH_COLUMNS),
            ("change_feed", self.feed, FEED_COLUMNS),
            ("change_counters", self.counters, COUNTER_COLUMNS),
        ]


def _generate(
    settings: Settings,
    options: SeedOptions,
    users: list[tuple[str, uuid.UUID]],
    now: datetime,
) -> _Rows:
    rng = random.Random(options.random_seed)
    rows = _Rows()
    gc.disable()  # 100k+ tuples of datetimes: the cyclic GC would rescan them again and again
    try:
        for email, user_id in users:
            own = [
                (new_id(), user_id, name, color, now - HISTORY, now - HISTORY)
                for name, color in CATEGORIES[: options.categories_per_user]
            ]
            rows.categories.extend(own)
            tasks, links = _task_rows(
                rng, user_id, options.tasks_per_user, [row[0] for row in own], now
            )
            rows.tasks.extend(tasks)
            rows.links.extend(links)
            rows.enter_in_feed(user_id, own, tasks)
            token = None
            if options.sessions:
                family, refresh, token = _open_session(settings, user_id, now)
                rows.families.append(family)
                rows.refresh_tokens.append(refresh)
            rows.accounts.append(Account(email, options.password, token))
    finally:
        gc.enable()
    return rows


async def _upsert_accounts(
    connection: Any, options: SeedOptions, password_hash: str, now: datetime
) -> tuple[list[tuple[str, uuid.UUID]], list[uuid.UUID]]:
    """Create or update the accounts, clear what they own; return them and the surplus ids."""
    emails = [email_for(options.prefix, index) for index in range(1, options.users + 1)]
    joined = now - HISTORY
    user_rows = [
        (new_id(), email, password_hash, f"Load Tester {index}", joined, joined, joined, now)
        for index, email in enumerate(emails, start=1)
    ]
    pattern = f"{options.prefix}-%@{EMAIL_DOMAIN}"
    before = {row["id"] for row in await connection.fetch(SEEDED_IDS, pattern)}
    await connection.execute(
        "CREATE TEMP TABLE seed_users (LIKE users INCLUDING DEFAULTS) ON COMMIT DROP"
    )
    await connection.copy_records_to_table("seed_users", records=user_rows, columns=USER_COLUMNS)
    ids = {row["email"]: row["id"] for row in await connection.fetch(UPSERT_USERS)}
    users = [(email, ids[email]) for email in emails]
    surplus = list(before.difference(ids.values()))
    for statement in CLEAR_DATA:
        await connection.execute(statement, list(before.union(ids.values())))
    if surplus:
        await connection.execute(DELETE_USERS, surplus)
    return users, surplus


async def seed(settings: Settings, options: SeedOptions) -> SeedResult:
    if not re.fullmatch(r"[a-z0-9]+", options.prefix):
        raise ValueError("the email prefix must be lower-case letters and digits")
    if options.categories_per_user > len(CATEGORIES):
        raise ValueError(f"at most {len(CATEGORIES)} categories per user")
    started = time.perf_counter()
    timings: dict[str, float] = {}

    def lap(name: str, since: float) -> float:
        timings[name] = round(time.perf_counter() - since, 3)
        return time.perf_counter()

    now = datetime.now(UTC).replace(microsecond=0)
    mark = time.perf_counter()
    hasher = argon2id(settings.password_hash_memory_kib, settings.password_hash_iterations)
    password_hash = hasher.hash(options.password)
    mark = lap("hash_once", mark)

    engine = create_async_engine(settings.database_url, poolclass=NullPool)
    try:
        async with engine.connect() as sa_connection:
            raw = await sa_connection.get_raw_connection()
            connection = raw.driver_connection
            assert connection is not None
            async with connection.transaction():
                users, surplus = await _upsert_accounts(connection, options, password_hash, now)
                mark = lap("accounts_and_cleanup", mark)
                rows = _generate(settings, options, users, now)
                mark = lap("generate", mark)
                for table, records, columns in rows.tables():
                    if records:
                        await connection.copy_records_to_table(
                            table, records=records, columns=columns
                        )
                    mark = lap(f"copy_{table}", mark)
            for table in ANALYZED:
                await connection.execute(f"ANALYZE {table}")
            lap("analyze", mark)
    finally:
        await engine.dispose()
    return SeedResult(
        accounts=rows.accounts,
        users=len(users),
        tasks=len(rows.tasks),
        categories=len(rows.categories),
        links=len(rows.links),
        removed_users=len(surplus),
        seconds=round(time.perf_counter() - started, 3),
        timings=timings,
    )


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m loadtests.seed", description="Seed accounts, tasks and sessions."
    )
    parser.add_argument("--users", type=int, default=1000, help="accounts (default 1000)")
    parser.add_argument("--tasks-per-user", type=int, default=100, help="default 100")
    parser.add_argument("--categories-per-user", type=int, default=5, help="default 5, max 8")
    parser.add_argument("--prefix", default=DEFAULT_PREFIX, help="PREFIX-NNNNNN@example.com")
    parser.add_argument("--password", default=DEFAULT_PASSWORD, help="every account's password")
    parser.add_argument(
        "--credentials",
        type=Path,
        default=None,
        help="credentials CSV to write (default $TASKPIPE_LOADTEST_CREDENTIALS or "
        ".taskpipe/loadtest-credentials.csv)",
    )
    parser.add_argument(
        "--no-sessions",
        action="store_true",
        help="open no sessions: every simulated user then logs in with its password (hashing); "
        "use when the seed cannot know the app's TASKPIPE_JWT_SECRET",
    )
    parser.add_argument("--random-seed", type=int, default=1, help="content is reproducible")
    args = parser.parse_args(argv)
    if args.users < 1 or args.tasks_per_user < 0:
        parser.error("--users must be >= 1 and --tasks-per-user >= 0")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    options = SeedOptions(
        users=args.users,
        tasks_per_user=args.tasks_per_user,
        categories_per_user=args.categories_per_user,
        prefix=args.prefix,
        password=args.password,
        sessions=not args.no_sessions,
        random_seed=args.random_seed,
    )
    settings = get_settings()
    result = asyncio.run(seed(settings, options))
    path = args.credentials or credentials_path()
    write_accounts(path, result.accounts)
    steps = ", ".join(f"{name} {seconds:.2f}s" for name, seconds in result.timings.items())
    print(
        f"seeded {result.users} users, {result.categories} categories, {result.tasks} tasks, "
        f"{result.links} category links in {result.seconds:.1f}s ({steps}); "
        f"removed {result.removed_users} surplus accounts; credentials in {path}",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
