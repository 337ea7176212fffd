"""The benchmark's raw-asyncpg anchor serves the page our list route serves (the same rows,
order, categories and total), so its ratio compares the same SQL work."""

from __future__ import annotations

import os
from typing import Any

import httpx

from loadtests.anchors import create_app
from tests.support.factories import register
from tests.support.tasks import TASKS, assign, create_category, create_task


def _essentials(page: dict[str, Any]) -> tuple[Any, ...]:
    items = [
        (item["id"], item["title"], [c["name"] for c in item["categories"]])
        for item in page["items"]
    ]
    return items, page["total"], page["pages"]


async def test_the_anchor_serves_the_same_page_as_the_list_route(
    live_client: httpx.AsyncClient,
) -> None:
    account = await register(live_client)
    category = await create_category(live_client, account, name="Errands")
    for number in range(23):  # a full first page and a total that needs the count
        task = await create_task(live_client, account, title=f"Anchor task {number}")
        if number % 5 == 0:
            await assign(live_client, account, task["id"], category["id"])
    ours = (await live_client.get(TASKS, headers=account.headers)).json()

    url = os.environ["TASKPIPE_DATABASE_URL"].replace("postgresql+asyncpg://", "postgresql://")
    anchors = create_app(url)
    async with anchors.router.lifespan_context(anchors):
        transport = httpx.ASGITransport(app=anchors)
        async with httpx.AsyncClient(transport=transport, base_url="http://anchor") as client:
            answer = await client.get("/anchor/tasks", params={"user_id": account.user["id"]})
            bare = await client.get("/anchor/bare")
    assert answer.status_code == 200
    assert _essentials(answer.json()) == _essentials(ours)
    assert ours["total"] == 23
    assert bare.json() == {"status": "ok"}
