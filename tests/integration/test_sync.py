"""The change feed: a full sync, incremental syncs, tombstones, cursors, 410 and the cache."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from api.resources import Resources
from common.db.changes import ChangeKind, DomainChange, TaskChanged
from common.maintenance.purge import purge_expired_rows
from common.models import ChangeCounter, ChangeFeedEntry, Task
from tests.support.factories import Account, register
from tests.support.tasks import (
    CATEGORIES,
    SYNC,
    TASKS,
    assign,
    cache_requests,
    create_category,
    create_task,
    follow_feed,
    sync_page,
)


def _ops(changes: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    return [(c["kind"], c["id"], c["op"]) for c in changes]


async def test_a_full_sync_gives_every_task_and_category_as_the_api_shows_them(
    client: httpx.AsyncClient,
) -> None:
    account = await register(client)
    category = await create_category(client, account, color="#112233")
    task = await create_task(client, account, priority="high")
    task = await assign(client, account, task["id"], category["id"])

    page = await sync_page(client, account)

    assert page["has_more"] is False
    assert _ops(page["changes"]) == [
        ("category", category["id"], "upsert"),
        ("task", task["id"], "upsert"),
    ]
    seqs = [change["seq"] for change in page["changes"]]
    assert seqs == sorted(seqs) and len(set(seqs)) == 2
    by_id = {change["id"]: change["data"] for change in page["changes"]}
    shown_task = await client.get(f"{TASKS}/{task['id']}", headers=account.headers)
    shown_category = await client.get(f"{CATEGORIES}/{category['id']}", headers=account.headers)
    assert by_id[task["id"]] == shown_task.json()
    assert by_id[category["id"]] == shown_category.json()


async def test_an_incremental_sync_gives_only_what_changed_after_the_cursor(
    client: httpx.AsyncClient,
) -> None:
    account = await register(client)
    kept = await create_task(client, account)
    edited = await create_task(client, account)
    deleted = await create_task(client, account)
    category = await create_category(client, account)
    _, cursor = await follow_feed(client, account)

    response = await client.patch(
        f"{TASKS}/{edited['id']}", json={"version": 1, "title": "Edited"}, headers=account.headers
    )
    assert response.status_code == 200
    assert (
        await client.delete(f"{TASKS}/{deleted['id']}", headers=account.headers)
    ).status_code == 204
    assert (
        await client.delete(f"{CATEGORIES}/{category['id']}", headers=account.headers)
    ).status_code == 204

    changes, cursor = await follow_feed(client, account, cursor)

    assert _ops(changes) == [
        ("task", edited["id"], "upsert"),
        ("task", deleted["id"], "delete"),
        ("category", category["id"], "delete"),
    ]
    assert changes[0]["data"]["title"] == "Edited"
    assert "data" not in changes[1] and "data" not in changes[2]
    assert kept["id"] not in {c["id"] for c in changes}
    assert (await sync_page(client, account, cursor))["changes"] == []


async def test_an_entity_appears_once_at_its_latest_change(client: httpx.AsyncClient) -> None:
    account = await register(client)
    task = await create_task(client, account)
    other = await create_task(client, account)
    for version in (1, 2):
        response = await client.patch(
            f"{TASKS}/{task['id']}",
            json={"version": version, "title": f"Take {version}"},
            headers=account.headers,
        )
        assert response.status_code == 200

    changes, _ = await follow_feed(client, account)

    assert [c["id"] for c in changes] == [other["id"], task["id"]]
    assert changes[1]["data"]["version"] == 3


async def test_pages_follow_next_cursor_without_gaps_or_repeats(client: httpx.AsyncClient) -> None:
    account = await register(client)
    created = [(await create_task(client, account))["id"] for _ in range(7)]

    first = await sync_page(client, account, limit=3)
    assert first["has_more"] is True and len(first["changes"]) == 3
    changes, _ = await follow_feed(client, account, limit=3)

    assert [c["id"] for c in changes] == created
    assert [c["id"] for c in changes[:3]] == [c["id"] for c in first["changes"]]


async def test_an_account_that_never_wrote_has_an_empty_feed(client: httpx.AsyncClient) -> None:
    account = await register(client)
    page = await sync_page(client, account)
    assert page["changes"] == [] and page["has_more"] is False
    assert (await sync_page(client, account, page["next_cursor"]))["changes"] == []


async def test_the_feed_shows_only_the_callers_changes(client: httpx.AsyncClient) -> None:
    mine, theirs = await register(client), await register(client)
    task = await create_task(client, mine)
    await create_task(client, theirs)
    await create_category(client, theirs)
    changes, _ = await follow_feed(client, mine)
    assert [c["id"] for c in changes] == [task["id"]]


async def test_a_write_that_rolls_back_leaves_no_entry(
    client: httpx.AsyncClient, test_resources: Resources, session: AsyncSession
) -> None:
    account = await register(client)
    user_id = uuid.UUID(account.user["id"])

    uow = test_resources.unit_of_work()
    uow.record(TaskChanged(user_id, uuid.uuid4(), ChangeKind.CREATED))
    await uow.end(RuntimeError("the handler failed after recording"))

    assert (await session.execute(select(ChangeFeedEntry.seq))).all() == []


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 501}, "limit"),
        ({"limit": "many"}, "limit"),
        ({"since": "x" * 2049}, "since"),
    ],
)
async def test_bad_parameters_are_400s_naming_them(
    client: httpx.AsyncClient, params: dict[str, Any], field: str
) -> None:
    account = await register(client)
    response = await client.get(SYNC, params=params, headers=account.headers)
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["errors"][0]["loc"] == ["query", field]


def _tampered(cursor: str) -> str:
    raw = bytearray(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    raw[raw.index(b'"s":') + 4] ^= 0x01  # another seq, same length
    return base64.urlsafe_b64encode(bytes(raw)).decode().rstrip("=")


async def test_a_tampered_or_foreign_cursor_is_a_400(client: httpx.AsyncClient) -> None:
    mine, theirs = await register(client), await register(client)
    await create_task(client, mine)
    await create_task(client, theirs)
    my_cursor = (await sync_page(client, mine))["next_cursor"]
    their_cursor = (await sync_page(client, theirs))["next_cursor"]

    for cursor in (_tampered(my_cursor), their_cursor, "not-a-cursor", "", "%%%"):
        response = await client.get(SYNC, params={"since": cursor}, headers=mine.headers)
        assert response.status_code == 400, cursor
        problem = response.json()
        assert problem["type"] == "urn:taskpipe:problem:invalid-cursor"
        assert problem["errors"][0]["loc"] == ["query", "since"]


async def test_without_credentials_the_feed_is_401(client: httpx.AsyncClient) -> None:
    assert (await client.get(SYNC)).status_code == 401


async def test_a_cursor_older_than_a_purged_tombstone_answers_410(
    client: httpx.AsyncClient, test_resources: Resources, session: AsyncSession
) -> None:
    account = await register(client)
    stale_cursor = (await sync_page(client, account))["next_cursor"]
    task = await create_task(client, account)
    kept = await create_task(client, account)
    deleted = await client.delete(f"{TASKS}/{task['id']}", headers=account.headers)
    assert deleted.status_code == 204
    _, fresh_cursor = await follow_feed(client, account)

    later = datetime.now(UTC) + timedelta(days=31)
    report = await purge_expired_rows(
        test_resources.unit_of_work, now=later, retention=timedelta(days=30), batch_size=10
    )

    assert report["change_feed"] == 1
    gone = await client.get(SYNC, params={"since": stale_cursor}, headers=account.headers)
    assert gone.status_code == 410
    assert gone.json()["type"] == "urn:taskpipe:problem:resync-required"
    assert "without `since`" in gone.json()["detail"]
    # A client that saw the tombstone goes on; a full sync starts over without it.
    assert (await sync_page(client, account, fresh_cursor))["changes"] == []
    newer = await create_task(client, account)
    changes, _ = await follow_feed(client, account)
    assert _ops(changes) == [("task", kept["id"], "upsert"), ("task", newer["id"], "upsert")]


async def test_a_cursor_ahead_of_the_servers_data_answers_410(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    account = await register(client)
    await create_task(client, account)
    await create_task(client, account)
    _, cursor = await follow_feed(client, account)
    # As after restoring a backup taken before the client's last sync.
    await session.execute(
        update(ChangeCounter)
        .where(ChangeCounter.user_id == uuid.UUID(account.user["id"]))
        .values(last_seq=1)
    )
    await session.flush()

    response = await client.get(SYNC, params={"since": cursor}, headers=account.headers)
    assert response.status_code == 410
    assert "ahead" in response.json()["detail"]


async def test_a_poll_with_nothing_new_is_a_cache_hit_and_a_write_is_seen_at_once(
    client: httpx.AsyncClient,
) -> None:
    account = await register(client)
    await create_task(client, account)
    _, cursor = await follow_feed(client, account)
    hits = cache_requests("sync", "hit")

    await sync_page(client, account, cursor)
    await sync_page(client, account, cursor)
    assert cache_requests("sync", "hit") == hits + 1

    task = await create_task(client, account)
    changes, _ = await follow_feed(client, account, cursor)
    assert [c["id"] for c in changes] == [task["id"]]


async def test_purging_tombstones_leaves_upserts_and_recent_tombstones(
    account_with_history: tuple[Account, list[str]],
    test_resources: Resources,
    session: AsyncSession,
) -> None:
    _, deleted = account_with_history
    now = datetime.now(UTC)
    await session.execute(
        update(ChangeFeedEntry)
        .where(ChangeFeedEntry.entity_id == uuid.UUID(deleted[0]))
        .values(changed_at=now - timedelta(days=31))
    )
    await session.flush()

    report = await purge_expired_rows(
        test_resources.unit_of_work, now=now, retention=timedelta(days=30), batch_size=10
    )

    assert report["change_feed"] == 1
    ops = dict((await session.execute(select(ChangeFeedEntry.entity_id, ChangeFeedEntry.op))).all())
    assert uuid.UUID(deleted[0]) not in ops
    assert str(ops[uuid.UUID(deleted[1])]) == "delete"
    assert sum(1 for op in ops.values() if str(op) == "upsert") == 2


@pytest.fixture
async def account_with_history(client: httpx.AsyncClient) -> tuple[Account, list[str]]:
    """Two live tasks and two deleted ones."""
    account = await register(client)
    deleted = []
    for _ in range(2):
        await create_task(client, account)
        task = await create_task(client, account)
        response = await client.delete(f"{TASKS}/{task['id']}", headers=account.headers)
        assert response.status_code == 204
        deleted.append(task["id"])
    return account, deleted


async def test_an_upsert_whose_entity_is_gone_reads_as_a_tombstone(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    """As while an account's rows are being erased: never an upsert without data."""
    account = await register(client)
    task = await create_task(client, account)
    await session.execute(delete(Task).where(Task.id == uuid.UUID(task["id"])))
    await session.flush()

    changes, _ = await follow_feed(client, account)

    assert changes == [{"kind": "task", "id": task["id"], "op": "delete", "seq": 1}]


async def test_changes_of_other_kinds_leave_the_feed_alone(
    client: httpx.AsyncClient, test_resources: Resources, session: AsyncSession
) -> None:
    account = await register(client)
    async with test_resources.unit_of_work() as uow:
        uow.record(DomainChange(uuid.UUID(account.user["id"])))
    assert (await session.execute(select(ChangeFeedEntry.seq))).all() == []
