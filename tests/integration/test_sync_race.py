"""Concurrent writers never make a follower of the change feed miss a change.

Real commits (`live_client`): every request has its own connection and transaction, so the
writers meet on PostgreSQL's row locks, and the follower reads committed data on its own
autocommit connections, as a syncing client would while others write.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from api.resources import Resources
from common.maintenance.purge import purge_expired_rows
from common.models import ChangeOp, EntityKind
from common.sync.repository import ChangeFeedRepository
from tests.support.factories import Account, register
from tests.support.tasks import TASKS, follow_feed

WRITES_PER_WRITER = 25


async def _writer(client: httpx.AsyncClient, account: Account, name: str) -> None:
    """Creates, edits and deletes tasks of the shared account, as fast as it can."""
    mine: dict[str, int] = {}
    for step in range(WRITES_PER_WRITER):
        if mine and step % 3 == 1:
            task_id, version = random.choice(list(mine.items()))
            response = await client.patch(
                f"{TASKS}/{task_id}",
                json={"version": version, "title": f"{name} edit {step}"},
                headers=account.headers,
            )
            assert response.status_code == 200, response.text
            mine[task_id] = response.json()["version"]
        elif mine and step % 7 == 6:
            task_id = random.choice(list(mine))
            response = await client.delete(f"{TASKS}/{task_id}", headers=account.headers)
            assert response.status_code == 204, response.text
            del mine[task_id]
        else:
            response = await client.post(
                TASKS, json={"title": f"{name} task {step}"}, headers=account.headers
            )
            assert response.status_code == 201, response.text
            mine[response.json()["id"]] = 1


async def _truth(resources: Resources, account: Account) -> dict[str, tuple[str, int]]:
    """What PostgreSQL holds: every task of the account, live or deleted, with its version."""
    async with resources.engine.connect() as connection:
        rows = await connection.execute(
            text("SELECT id, deleted_at IS NULL, version FROM tasks WHERE user_id = :u"),
            {"u": uuid.UUID(account.user["id"])},
        )
        return {
            str(task_id): ("upsert" if live else "delete", version)
            for task_id, live, version in rows
        }


async def test_two_racing_writers_and_a_follower_nothing_is_skipped(
    live_client: httpx.AsyncClient, resources: Resources, monkeypatch: pytest.MonkeyPatch
) -> None:
    account = await register(live_client)
    append = ChangeFeedRepository.append

    async def slow_append(self: ChangeFeedRepository, *args: Any, **kwargs: Any) -> None:
        # Between taking its seq and committing, a writer lingers: the other writer and the
        # follower get every chance to overtake it.
        await append(self, *args, **kwargs)
        await asyncio.sleep(random.uniform(0, 0.01))

    monkeypatch.setattr(ChangeFeedRepository, "append", slow_append)

    seen: dict[str, tuple[str, int]] = {}
    seqs: list[int] = []
    writers_done = asyncio.Event()

    async def follower() -> None:
        cursor = None
        while True:
            finished = writers_done.is_set()
            changes, cursor = await follow_feed(live_client, account, cursor, limit=7)
            for change in changes:
                seqs.append(change["seq"])
                version = change["data"]["version"] if change["op"] == "upsert" else -1
                seen[change["id"]] = (change["op"], version)
            if finished:
                return
            await asyncio.sleep(0)

    async def writers() -> None:
        try:
            await asyncio.gather(
                _writer(live_client, account, "left"), _writer(live_client, account, "right")
            )
        finally:
            writers_done.set()

    await asyncio.gather(follower(), writers())

    truth = await _truth(resources, account)
    assert len(truth) > WRITES_PER_WRITER
    assert seqs == sorted(seqs) and len(seqs) == len(set(seqs)), "the feed went backwards"
    # Tombstones carry no version: compare what the follower holds with the database.
    assert {task_id: op for task_id, (op, _) in seen.items()} == {
        task_id: op for task_id, (op, _) in truth.items()
    }
    assert {tid: v for tid, (op, v) in seen.items() if op == "upsert"} == {
        tid: v for tid, (op, v) in truth.items() if op == "upsert"
    }


async def test_a_purge_waits_for_a_writer_of_the_same_owner_and_keeps_what_it_revived(
    live_client: httpx.AsyncClient, resources: Resources
) -> None:
    """The maintenance purge meets a writer that is turning an old tombstone back into an
    upsert (a restore) on the same owner: the purge waits for the writer's commit instead of
    deadlocking, then leaves the revived entry alone and does not move the owner's horizon."""
    account = await register(live_client)
    user_id = uuid.UUID(account.user["id"])
    task = (
        await live_client.post(TASKS, json={"title": "Old one"}, headers=account.headers)
    ).json()
    await live_client.delete(f"{TASKS}/{task['id']}", headers=account.headers)
    async with resources.engine.begin() as connection:
        await connection.execute(
            text(
                "UPDATE change_feed SET changed_at = now() - interval '40 days' WHERE user_id = :u"
            ),
            {"u": user_id},
        )

    async with resources.engine.connect() as writer:
        await writer.begin()
        await ChangeFeedRepository(writer).append(
            user_id, [(EntityKind.TASK, uuid.UUID(task["id"]), ChangeOp.UPSERT)]
        )
        purge = asyncio.create_task(
            purge_expired_rows(
                resources.unit_of_work,
                now=datetime.now(UTC),
                retention=timedelta(days=30),
                batch_size=100,
            )
        )
        await asyncio.sleep(0.5)
        assert not purge.done(), "the purge should wait for the owner's writer"
        await writer.commit()

    report = await asyncio.wait_for(purge, timeout=10)

    assert report["change_feed"] == 0
    async with resources.engine.connect() as connection:
        entry = (
            await connection.execute(
                text("SELECT op FROM change_feed WHERE entity_id = :t"), {"t": task["id"]}
            )
        ).scalar_one()
        horizon = await connection.scalar(
            text("SELECT purged_through FROM change_counters WHERE user_id = :u"), {"u": user_id}
        )
    assert (entry, horizon) == ("upsert", 0)
