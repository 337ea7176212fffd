"""At 50k tasks for one user, the list query and its count never scan the whole tasks table;
nor do keyset pages, the change feed, the trash and the subtask walks.

The statements checked are the ones the API runs (`page_statement`, `count_statement`), with
their parameters inlined. The data is committed and vacuumed, as in production after
autovacuum (index-only scans need the visibility map). Besides the user's 50k tasks the table
holds 50k deleted tasks of another user (awaiting the purge): a sequential scan would read
them, the partial indexes do not. (When one user's live tasks are the whole table, a
sequential scan is as good as any index for counting all of them, and the planner knows it.)
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from sqlalchemy import Select, text

from api.resources import Resources
from common.sync.repository import READ_CHANGES
from common.tasks import keyset, tree
from common.tasks.queries import (
    Position,
    TaskListQuery,
    count_statement,
    list_parameters,
    page_statement,
    parse_list_query,
    tail_statement,
)
from common.tasks.repository import TRASH_PAGE_AFTER

pytestmark = pytest.mark.slow

ROWS = 50_000
USER = uuid.UUID("00000000-0000-4000-8000-0000000000a1")
OTHER = uuid.UUID("00000000-0000-4000-8000-0000000000a2")
CATEGORY = uuid.UUID("00000000-0000-4000-8000-0000000000c1")

# One statement. A large GIN pending list lets the trigram index take the rows in bulk
# (VACUUM merges it): half the time of the insert. Ids derive from g, so that every tenth task
# of the user is a subtask of the one before it (5,000 parents with one child each).
SEED = f"""
INSERT INTO tasks (id, user_id, title, description, status, priority, due_date,
                   created_at, updated_at, deleted_at, parent_id)
SELECT md5('task' || g)::uuid,
       CASE WHEN g <= {ROWS} THEN '{USER}'::uuid ELSE '{OTHER}'::uuid END,
       'Task ' || g,
       CASE WHEN g % 1000 = 0 THEN 'needle ' || g END,
       (ARRAY['pending', 'in_progress', 'completed', 'cancelled'])[1 + g % 4],
       1 + g % 3,
       CASE WHEN g % 5 <> 0 THEN now() + ((g % 2000) - 1000) * interval '1 hour' END,
       now() - g * interval '1 minute', now() - g * interval '30 seconds',
       CASE WHEN g % 100 = 0 OR g > {ROWS} THEN now() END,
       CASE WHEN g % 10 = 0 AND g <= {ROWS} THEN md5('task' || (g - 1))::uuid END
FROM generate_series(1, {2 * ROWS}) AS g
"""
# Each task's latest change in the feed: 50k entries per user (the other's are tombstones).
FEED = """
INSERT INTO change_feed (user_id, kind, entity_id, seq, op, changed_at)
SELECT user_id, 'task', id, row_number() OVER (PARTITION BY user_id ORDER BY updated_at, id),
       CASE WHEN deleted_at IS NULL THEN 'upsert' ELSE 'delete' END,
       coalesce(deleted_at, updated_at)
FROM tasks
"""
COUNTERS = """
INSERT INTO change_counters (user_id, last_seq)
SELECT user_id, max(seq) FROM change_feed GROUP BY user_id
"""


@pytest.fixture(scope="module")
async def seeded(resources: Resources) -> AsyncIterator[Resources]:
    async with resources.engine.begin() as connection:
        for user_id in (USER, OTHER):
            await connection.execute(
                text(
                    "INSERT INTO users (id, email, password_hash, full_name)"
                    " VALUES (:id, :email, 'x', 'Index test')"
                ),
                {"id": user_id, "email": f"{user_id}@example.com"},
            )
        await connection.execute(text("SET LOCAL gin_pending_list_limit = '256MB'"))
        await connection.execute(text(SEED))
        await connection.execute(
            text("INSERT INTO categories (id, user_id, name) VALUES (:id, :user_id, 'Index')"),
            {"id": CATEGORY, "user_id": USER},
        )
        await connection.execute(
            text(
                "INSERT INTO task_categories (task_id, category_id)"
                " SELECT id, :category FROM tasks WHERE user_id = :user_id AND random() < 0.02"
            ),
            {"category": CATEGORY, "user_id": USER},
        )
        await connection.execute(text(FEED))
        await connection.execute(text(COUNTERS))
    async with resources.engine.connect() as connection:
        autocommit = await connection.execution_options(isolation_level="AUTOCOMMIT")
        await autocommit.execute(
            text("VACUUM ANALYZE tasks, task_categories, categories, change_feed, change_counters")
        )
    yield resources
    async with resources.engine.begin() as connection:
        await connection.execute(
            text(
                "TRUNCATE tasks, task_categories, categories, change_feed, change_counters CASCADE"
            )
        )
        await connection.execute(
            text("DELETE FROM users WHERE id IN (:a, :b)"), {"a": USER, "b": OTHER}
        )


async def _plan(resources: Resources, statement: Select[Any]) -> dict[str, Any]:
    sql = statement.compile(
        dialect=resources.engine.dialect, compile_kwargs={"literal_binds": True}
    )
    async with resources.engine.connect() as connection:
        rows = await connection.exec_driver_sql(f"EXPLAIN (FORMAT JSON) {sql}")
        (plan,) = rows.scalar_one()
    if isinstance(plan, str | bytes):  # pragma: no cover - depends on the driver's codecs
        plan = orjson.loads(plan)[0]
    result: dict[str, Any] = plan["Plan"]
    return result


def _nodes(plan: dict[str, Any]) -> list[dict[str, Any]]:
    found = [plan]
    for child in plan.get("Plans", []):
        found.extend(_nodes(child))
    return found


def _task_scans(plan: dict[str, Any]) -> list[dict[str, Any]]:
    """The nodes that read the tasks table itself."""
    return [node for node in _nodes(plan) if node.get("Relation Name") == "tasks"]


def _tasks_seq_scans(plan: dict[str, Any]) -> list[str]:
    return [node["Node Type"] for node in _task_scans(plan) if "Seq Scan" in node["Node Type"]]


def _task_sorts(plan: dict[str, Any]) -> list[dict[str, Any]]:
    """Sort nodes that order task rows (a task scan below them).

    Sorts elsewhere are not the list's order: PostgreSQL 16 and later plan the category subquery
    (`jsonb_agg(... ORDER BY name)`, one task's few categories) with a Sort node of its own.
    """
    return [node for node in _nodes(plan) if node["Node Type"] == "Sort" and _task_scans(node)]


def _index_names(plan: dict[str, Any]) -> set[str]:
    return {node["Index Name"] for node in _nodes(plan) if "Index Name" in node}


NOW = datetime.now(UTC)
# name -> (query parameters, indexes of which the page or the count must use one)
FILTERS: dict[str, tuple[dict[str, Any], set[str]]] = {
    "default": ({}, {"ix_tasks_user_live"}),
    "deep page": ({"page": 1000}, {"ix_tasks_user_live", "ix_tasks_user_created"}),
    "status": ({"status": ["pending"]}, {"ix_tasks_user_status"}),
    # The partial index of open tasks covers exactly these two statuses.
    "open statuses": (
        {"status": ["pending,in_progress"]},
        {"ix_tasks_user_status", "ix_tasks_user_open_due"},
    ),
    "priority": ({"priority": ["high"]}, {"ix_tasks_user_priority"}),
    "due window": (
        {"due_from": NOW + timedelta(days=1), "due_to": NOW + timedelta(days=3)},
        {"ix_tasks_user_due"},
    ),
    # The planner may drive from the links or from the user's live tasks; both avoid a scan.
    "category": (
        {"category_id": [str(CATEGORY)]},
        {"pk_task_categories", "ix_task_categories_category_id", "ix_tasks_user_live"},
    ),
    "search": ({"q": "Needle 42"}, {"ix_tasks_user_search"}),
    "overdue": ({"overdue": True}, {"ix_tasks_user_open_due"}),
}
SORTS = [
    f"{sign}{key}"
    for key in ("created_at", "updated_at", "due_date", "priority", "title", "status")
    for sign in ("", "-")
]


@pytest.mark.parametrize("name", FILTERS)
async def test_each_filter_avoids_a_sequential_scan(seeded: Resources, name: str) -> None:
    params, indexes = FILTERS[name]
    query = parse_list_query(**params)
    page_plan = await _plan(seeded, page_statement(query).params(list_parameters(USER, query)))
    count_plan = await _plan(seeded, count_statement(query).params(list_parameters(USER, query)))
    assert _tasks_seq_scans(page_plan) == [], page_plan
    assert _tasks_seq_scans(count_plan) == [], count_plan
    used = _index_names(page_plan) | _index_names(count_plan)
    assert used & indexes, (used, page_plan, count_plan)


@pytest.mark.parametrize("sort", SORTS)
async def test_each_single_key_sort_is_served_by_an_index(seeded: Resources, sort: str) -> None:
    query = parse_list_query(sort=[sort])
    plan = await _plan(seeded, page_statement(query).params(list_parameters(USER, query)))
    assert _tasks_seq_scans(plan) == [], plan
    field = sort.removeprefix("-")
    task_indexes = {node.get("Index Name", "") for node in _task_scans(plan)}
    assert any(field.split("_")[0] in index for index in task_indexes), plan
    # The index delivers the order: at most an incremental sort on the tie-breakers.
    assert _task_sorts(plan) == [], plan


async def test_the_seeded_rows_are_what_the_plans_were_checked_against(seeded: Resources) -> None:
    async with seeded.engine.connect() as connection:
        live = await connection.scalar(
            text("SELECT count(*) FROM tasks WHERE user_id = :u AND deleted_at IS NULL"),
            {"u": USER},
        )
    assert live == ROWS - ROWS // 100


def test_only_a_sort_of_task_rows_counts_against_the_index() -> None:
    # The shapes of PostgreSQL 18's plans: a sort inside the category subquery (fine) and a
    # sort of the tasks the index should have delivered in order (not fine).
    category_subplan = {
        "Node Type": "Aggregate",
        "Parent Relationship": "SubPlan",
        "Plans": [
            {
                "Node Type": "Sort",
                "Plans": [{"Node Type": "Seq Scan", "Relation Name": "categories"}],
            }
        ],
    }
    served = {
        "Node Type": "Limit",
        "Plans": [
            {
                "Node Type": "Index Scan",
                "Relation Name": "tasks",
                "Index Name": "ix_tasks_user_created",
                "Plans": [category_subplan],
            }
        ],
    }
    sorted_afterwards = {
        "Node Type": "Limit",
        "Plans": [{"Node Type": "Sort", "Plans": [served["Plans"][0]]}],
    }
    assert _task_sorts(served) == []
    assert [node["Node Type"] for node in _task_sorts(sorted_afterwards)] == ["Sort"]


# --- keyset pages, the feed, the trash, subtasks ---------------------------------------------


async def _rows(resources: Resources, statement: Any, parameters: dict[str, Any]) -> list[Any]:
    async with resources.engine.connect() as connection:
        return list((await connection.execute(statement, parameters)).all())


async def _position_at(resources: Resources, query: TaskListQuery, page: int) -> Position:
    """The position after the last row of offset page `page` of `query`'s list."""
    offset_page = dataclasses.replace(query, page=page)
    rows = await _rows(resources, page_statement(offset_page), list_parameters(USER, offset_page))
    values = keyset.position_of(rows[-1], query.ordering)
    return Position(keyset.parse_position(values, query.ordering))


def _assert_index_ordered(plan: dict[str, Any], field: str) -> None:
    assert _tasks_seq_scans(plan) == [], plan
    task_indexes = {node.get("Index Name", "") for node in _task_scans(plan)}
    assert any(field.split("_")[0] in index for index in task_indexes), plan
    assert _task_sorts(plan) == [], plan


@pytest.mark.parametrize("sort", SORTS)
async def test_a_keyset_page_of_each_sort_starts_at_its_position_on_the_index(
    seeded: Resources, sort: str
) -> None:
    query = parse_list_query(sort=[sort], limit=20)
    position = await _position_at(seeded, query, page=1000)
    statement = page_statement(query, position)
    plan = await _plan(seeded, statement.params(list_parameters(USER, query, position)))
    _assert_index_ordered(plan, sort.removeprefix("-"))
    # A range scan from the position, not a walk over the 20,000 rows before it.
    scans = _task_scans(plan)
    assert any("Index Cond" in node and "ROW(" in node["Index Cond"] for node in scans), plan


@pytest.mark.parametrize(
    ("sort", "page"),
    [("due_date", 2300), ("-due_date", 100)],  # positions among the tasks without a due date
)
async def test_due_date_pages_read_each_region_on_the_index(
    seeded: Resources, sort: str, page: int
) -> None:
    query = parse_list_query(sort=[sort], limit=20)
    position = await _position_at(seeded, query, page=page)
    assert position.values[0] is None
    parameters = list_parameters(USER, query, position)
    plan = await _plan(seeded, page_statement(query, position).params(parameters))
    _assert_index_ordered(plan, "due_date")
    tail = tail_statement(query, position)
    if sort.startswith("-"):  # the undated come first: then the dated, from their start
        assert tail is not None
        _assert_index_ordered(await _plan(seeded, tail.params(parameters)), "due_date")
    else:
        assert tail is None  # nothing follows the undated


async def test_a_dated_due_date_position_reads_the_undated_next_on_the_index(
    seeded: Resources,
) -> None:
    query = parse_list_query(sort=["due_date"], limit=20)
    position = await _position_at(seeded, query, page=1000)
    tail = tail_statement(query, position)
    assert position.values[0] is not None and tail is not None
    plan = await _plan(seeded, tail.params(list_parameters(USER, query, position)))
    _assert_index_ordered(plan, "due_date")


async def test_the_change_feed_reads_after_the_cursor_on_its_index(seeded: Resources) -> None:
    statement = READ_CHANGES.params(user_id=USER, since=ROWS // 2, limit=101)
    plan = await _plan(seeded, statement)
    feed_scans = [node for node in _nodes(plan) if node.get("Relation Name") == "change_feed"]
    assert [node.get("Index Name") for node in feed_scans] == ["uq_change_feed_user_seq"], plan
    assert all("Seq Scan" not in node["Node Type"] for node in feed_scans), plan
    assert _tasks_seq_scans(plan) == [], plan


async def test_the_trash_pages_on_its_index(seeded: Resources) -> None:
    parameters = {
        "user_id": USER,
        "kept_for": timedelta(days=30),
        "limit": 21,
        "after_deleted_at": NOW,
        "after_id": uuid.UUID(int=0),
    }
    plan = await _plan(seeded, TRASH_PAGE_AFTER.params(parameters))
    assert _tasks_seq_scans(plan) == [], plan
    assert "ix_tasks_user_deleted" in _index_names(plan), plan
    assert _task_sorts(plan) == [], plan


async def _some_parent(resources: Resources) -> uuid.UUID:
    async with resources.engine.connect() as connection:
        parent: uuid.UUID = await connection.scalar(
            text(
                "SELECT parent_id FROM tasks WHERE user_id = :u AND parent_id IS NOT NULL"
                " AND deleted_at IS NULL LIMIT 1"
            ),
            {"u": USER},
        )
    return parent


async def test_subtask_counts_and_lists_use_the_live_children_index(seeded: Resources) -> None:
    query = parse_list_query()
    plan = await _plan(seeded, page_statement(query).params(list_parameters(USER, query)))
    children = [node for node in _nodes(plan) if node.get("Index Name") == "ix_tasks_live_children"]
    assert children and all(node["Node Type"] == "Index Only Scan" for node in children), plan

    query = parse_list_query(parent_id=await _some_parent(seeded))
    plan = await _plan(seeded, page_statement(query).params(list_parameters(USER, query)))
    assert _tasks_seq_scans(plan) == [], plan
    assert _index_names(plan) & {"ix_tasks_live_children", "ix_tasks_parent"}, plan


async def test_tree_walks_follow_the_indexes(seeded: Resources) -> None:
    parent = await _some_parent(seeded)
    walks = {
        "ancestry": tree.ancestry(USER, parent),
        "height": tree.subtree_height(USER, parent),
        "delete": tree.soft_delete(USER, [parent], version=None),
        "restore": tree.deleted_subtree(USER, parent, kept_for=timedelta(days=30)),
    }
    for name, statement in walks.items():
        plan = await _plan(seeded, statement)
        assert _tasks_seq_scans(plan) == [], (name, plan)
