"""The seed against the test database: shape, idempotence, and sessions that really work.

The seed commits for real (its own engine), so these tests use `committed_data`, which empties
every table afterwards.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from api.resources import Resources
from common.config import Settings
from loadtests.accounts import Account, read_accounts, write_accounts
from loadtests.seed import DEFAULT_PASSWORD, SeedOptions, email_for, main, seed

pytestmark = pytest.mark.usefixtures("committed_data")

COUNTS = """
SELECT
  (SELECT count(*) FROM users WHERE email LIKE 'loadtest-%') AS users,
  (SELECT count(*) FROM tasks t JOIN users u ON u.id = t.user_id
    WHERE u.email LIKE 'loadtest-%' AND t.deleted_at IS NULL) AS tasks,
  (SELECT count(*) FROM categories c JOIN users u ON u.id = c.user_id
    WHERE u.email LIKE 'loadtest-%') AS categories,
  (SELECT count(*) FROM refresh_token_families f JOIN users u ON u.id = f.user_id
    WHERE u.email LIKE 'loadtest-%' AND f.revoked_at IS NULL) AS sessions,
  (SELECT count(*) FROM users WHERE email NOT LIKE 'loadtest-%') AS others
"""


async def _counts(resources: Resources) -> dict[str, int]:
    async with resources.engine.connect() as connection:
        row = (await connection.execute(text(COUNTS))).mappings().one()
        return dict(row)


async def _user_ids(resources: Resources) -> dict[str, uuid.UUID]:
    async with resources.engine.connect() as connection:
        rows = await connection.execute(
            text("SELECT email, id FROM users WHERE email LIKE 'loadtest-%'")
        )
        return {row.email: row.id for row in rows}


async def test_seed_is_idempotent_and_keeps_account_ids(
    settings: Settings, resources: Resources
) -> None:
    options = SeedOptions(users=4, tasks_per_user=6, categories_per_user=3)
    first = await seed(settings, options)
    ids = await _user_ids(resources)
    expected = {"users": 4, "tasks": 24, "categories": 12, "sessions": 4, "others": 0}
    assert await _counts(resources) == expected
    assert (first.users, first.tasks, first.categories) == (4, 24, 12)

    second = await seed(settings, options)
    assert await _counts(resources) == expected, "a re-run replaces, it does not add"
    async with resources.engine.connect() as connection:
        feed = await connection.scalar(text("SELECT count(*) FROM change_feed"))
    assert feed == 24 + 12
    assert await _user_ids(resources) == ids, "accounts keep their ids"
    assert [a.refresh_token for a in second.accounts] != [a.refresh_token for a in first.accounts]


async def test_seed_shrinks_and_leaves_other_accounts_alone(
    settings: Settings, resources: Resources, live_client: httpx.AsyncClient
) -> None:
    await live_client.post(
        "/api/v1/auth/register",
        json={"email": "someone@example.com", "password": DEFAULT_PASSWORD, "full_name": "S"},
    )
    await seed(settings, SeedOptions(users=5, tasks_per_user=2))
    result = await seed(settings, SeedOptions(users=2, tasks_per_user=3))
    assert result.removed_users == 3
    counts = await _counts(resources)
    assert counts == {"users": 2, "tasks": 6, "categories": 10, "sessions": 2, "others": 1}
    assert set(await _user_ids(resources)) == {email_for("loadtest", 1), email_for("loadtest", 2)}


async def test_seeded_accounts_log_in_and_resume_their_sessions(
    settings: Settings, live_client: httpx.AsyncClient
) -> None:
    result = await seed(settings, SeedOptions(users=2, tasks_per_user=3))
    first, second = result.accounts
    assert first.refresh_token is not None
    refreshed = await live_client.post(
        "/api/v1/auth/refresh", json={"refresh_token": first.refresh_token}
    )
    assert refreshed.status_code == 200, refreshed.text
    headers = {"Authorization": f"Bearer {refreshed.json()['access_token']}"}
    page = await live_client.get("/api/v1/tasks", headers=headers)
    assert page.status_code == 200, page.text
    assert page.json()["total"] == 3
    categories = await live_client.get("/api/v1/categories", headers=headers)
    assert categories.json()["total"] == 5
    # A syncing client's full sync finds what the seed wrote, and then the client's own writes.
    synced = (await live_client.get("/api/v1/sync", headers=headers)).json()
    assert [change["kind"] for change in synced["changes"]] == ["category"] * 5 + ["task"] * 3
    created = await live_client.post("/api/v1/tasks", json={"title": "After"}, headers=headers)
    later = await live_client.get(
        "/api/v1/sync", params={"since": synced["next_cursor"]}, headers=headers
    )
    assert [c["id"] for c in later.json()["changes"]] == [created.json()["id"]]

    login = await live_client.post(
        "/api/v1/auth/login", json={"email": second.email, "password": second.password}
    )
    assert login.status_code == 200, login.text


async def test_the_seed_hashes_once_at_the_apps_cost(
    settings: Settings, resources: Resources
) -> None:
    await seed(settings, SeedOptions(users=3, tasks_per_user=0))
    async with resources.engine.connect() as connection:
        hashes = (
            await connection.execute(
                text("SELECT DISTINCT password_hash FROM users WHERE email LIKE 'loadtest-%'")
            )
        ).scalars()
        (only,) = list(hashes)
    cost = f"m={settings.password_hash_memory_kib},t={settings.password_hash_iterations},p=1"
    assert only.startswith(f"$argon2id$v=19${cost}$")


async def test_seed_without_sessions_and_with_a_bad_prefix(settings: Settings) -> None:
    result = await seed(settings, SeedOptions(users=1, tasks_per_user=0, sessions=False))
    assert result.accounts[0].refresh_token is None
    with pytest.raises(ValueError, match="prefix"):
        await seed(settings, SeedOptions(users=1, tasks_per_user=0, prefix="load_test"))


def test_the_command_writes_the_credentials_file(settings: Settings, tmp_path: Path) -> None:
    path = tmp_path / "nested" / "credentials.csv"
    assert main(["--users", "3", "--tasks-per-user", "1", "--credentials", str(path)]) == 0
    accounts = read_accounts(path)
    assert [account.email for account in accounts] == [email_for("loadtest", i) for i in (1, 2, 3)]
    assert all(account.refresh_token for account in accounts)
    assert path.stat().st_mode & 0o777 == 0o600


def test_credentials_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    accounts = [
        Account("a@example.com", 'pw,with"quotes', None),
        Account("b@example.com", "p", "r"),
    ]
    write_accounts(path, accounts)
    assert read_accounts(path) == accounts
