"""A search reads the caller's tasks only, however many other tenants' tasks match.

50k tasks over 401 users: one with 10k tasks, 400 with 100 each. About a tenth of every user's
titles contain "report". Before the per-user index, a search read every tenant's matches from
the trigram index (5k rows) and threw away all but the caller's. The plans are read with
EXPLAIN ANALYZE: the rows each index hands over are counted, not estimated.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from sqlalchemy import Select, text

from api.resources import Resources
from common.tasks.queries import count_statement, list_parameters, page_statement, parse_list_query

pytestmark = pytest.mark.slow

BIG = uuid.UUID("00000000-0000-4000-8000-00000000b160")
BIG_TASKS = 10_000
SMALL_USERS = 400
SMALL_TASKS = 100

SEED = f"""
INSERT INTO users (id, email, password_hash, full_name, email_verified_at)
SELECT CASE WHEN u = 0 THEN '{BIG}'::uuid
            ELSE ('00000000-0000-4000-8000-' || lpad(to_hex(u), 12, '0'))::uuid END,
       'search-' || u || '@example.com', 'x', 'Search test', now()
FROM generate_series(0, {SMALL_USERS}) AS u;

INSERT INTO tasks (id, user_id, title, status, priority, created_at, updated_at)
SELECT gen_random_uuid(),
       CASE WHEN g <= {BIG_TASKS} THEN '{BIG}'::uuid
            ELSE ('00000000-0000-4000-8000-'
                  || lpad(to_hex(1 + (g - {BIG_TASKS}) % {SMALL_USERS}), 12, '0'))::uuid END,
       (ARRAY['Write the report', 'Buy groceries', 'Call the dentist', 'Plan the trip',
              'Pay the invoice', 'Renew the passport', 'Book a table', 'Clean the shed',
              'Fix the bike', 'Order new tyres'])[1 + ((g - 1) / {SMALL_USERS}) % 10] || ' #' || g,
       'pending', 2, now() - g * interval '1 minute', now()
FROM generate_series(1, {BIG_TASKS + SMALL_USERS * SMALL_TASKS}) AS g;
"""
SMALL = uuid.UUID("00000000-0000-4000-8000-000000000007")


@pytest.fixture(scope="module")
async def seeded(resources: Resources) -> AsyncIterator[Resources]:
    async with resources.engine.begin() as connection:
        await connection.execute(text("SET LOCAL statement_timeout = 0"))
        await connection.execute(text("SET LOCAL gin_pending_list_limit = '256MB'"))
        for statement in SEED.split(";\n"):
            if statement.strip():
                await connection.execute(text(statement))
    async with resources.engine.connect() as connection:
        autocommit = await connection.execution_options(isolation_level="AUTOCOMMIT")
        await autocommit.execute(text("SET statement_timeout = 0"))
        await autocommit.execute(text("VACUUM ANALYZE tasks, users"))
    yield resources
    async with resources.engine.begin() as connection:
        await connection.execute(text("TRUNCATE tasks CASCADE"))
        await connection.execute(text("DELETE FROM users WHERE email LIKE 'search-%'"))


async def _analyzed(resources: Resources, statement: Select[Any]) -> dict[str, Any]:
    sql = statement.compile(
        dialect=resources.engine.dialect, compile_kwargs={"literal_binds": True}
    )
    async with resources.engine.connect() as connection:
        rows = await connection.exec_driver_sql(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}")
        (plan,) = rows.scalar_one()
    if isinstance(plan, str | bytes):  # pragma: no cover - depends on the driver's codecs
        plan = orjson.loads(plan)[0]
    result: dict[str, Any] = plan["Plan"]
    return result


def _index_scans(plan: dict[str, Any]) -> list[dict[str, Any]]:
    found = [plan] if "Index Name" in plan else []
    for child in plan.get("Plans", []):
        found.extend(_index_scans(child))
    return found


async def _plans(resources: Resources, user_id: uuid.UUID, q: str) -> list[dict[str, Any]]:
    query = parse_list_query(q=q)
    parameters = list_parameters(user_id, query)
    return [
        await _analyzed(resources, statement.params(parameters))
        for statement in (page_statement(query), count_statement(query))
    ]


@pytest.mark.parametrize(("user_id", "tasks"), [(BIG, BIG_TASKS), (SMALL, SMALL_TASKS)])
async def test_no_index_hands_over_more_rows_than_the_caller_has_tasks(
    seeded: Resources, user_id: uuid.UUID, tasks: int
) -> None:
    for plan in await _plans(seeded, user_id, "Report"):
        scans = _index_scans(plan)
        assert scans, plan
        for scan in scans:
            assert scan["Index Name"] != "ix_tasks_search_trgm", plan
            assert scan["Actual Rows"] * scan.get("Actual Loops", 1) <= tasks, plan


async def test_the_big_tenants_search_reads_its_own_matches_from_the_per_user_index(
    seeded: Resources,
) -> None:
    _, count_plan = await _plans(seeded, BIG, "report")
    (scan,) = _index_scans(count_plan)
    assert scan["Index Name"] == "ix_tasks_user_search"
    assert "user_id" in scan["Index Cond"]
    assert scan["Actual Rows"] <= 2 * BIG_TASKS // 10  # its own ~1000 matches, no one else's


async def test_the_seeded_rows_are_what_the_plans_were_checked_against(
    seeded: Resources,
) -> None:
    async with seeded.engine.connect() as connection:
        total = await connection.scalar(text("SELECT count(*) FROM tasks"))
        matching = await connection.scalar(
            text("SELECT count(*) FROM tasks WHERE lower(title) LIKE '%report%'")
        )
        mine = await connection.scalar(
            text("SELECT count(*) FROM tasks WHERE user_id = :u"), {"u": SMALL}
        )
        mine_matching = await connection.scalar(
            text("SELECT count(*) FROM tasks WHERE user_id = :u AND title LIKE '%report%'"),
            {"u": SMALL},
        )
    assert total == BIG_TASKS + SMALL_USERS * SMALL_TASKS == 50_000
    assert 4_500 <= matching <= 5_500
    assert mine == SMALL_TASKS
    assert 0 < mine_matching < SMALL_TASKS
