"""Data exports at the API level: asked for, built (the job's body, run here in-process), read
through the mailed link, limited, expired and purged. The real worker builds and mails one in
tests/worker/test_account_jobs.py; a worker killed mid-export in test_account_job_crashes.py."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from redis.asyncio import Redis
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from api.resources import Resources
from common.accounts.exports import build_export
from common.maintenance.purge import purge_expired_rows
from common.models import AccountExport, ExportStatus
from tests.support.accounts import activity_kinds, open_archive
from tests.support.factories import PASSWORD, Account, register
from tests.support.mail_jobs import queued_jobs

EXPORTS = "/api/v1/users/me/exports"
BUILD = "taskpipe.accounts.build_export"


async def _request(client: httpx.AsyncClient, account: Account) -> dict[str, Any]:
    response = await client.post(EXPORTS, headers=account.headers)
    assert response.status_code == 202, response.text
    body: dict[str, Any] = response.json()
    return body


async def _built(
    client: httpx.AsyncClient, account: Account, resources: Resources, export_id: str
) -> dict[str, Any]:
    """Run the job's body in-process, then read the export as its owner."""
    status = await build_export(resources.unit_of_work, resources.settings, uuid.UUID(export_id))
    assert status is ExportStatus.READY
    shown = await client.get(f"{EXPORTS}/{export_id}", headers=account.headers)
    body: dict[str, Any] = shown.json()
    return body


async def _download(client: httpx.AsyncClient, url: str) -> httpx.Response:
    parts = urlsplit(url)
    return await client.get(parts.path, params=parse_qs(parts.query))


async def _seed(client: httpx.AsyncClient, account: Account) -> dict[str, str]:
    """A category, a live task in it with a formula-looking title, a soft-deleted task."""
    headers = account.headers
    category = (
        await client.post("/api/v1/categories", json={"name": "Work"}, headers=headers)
    ).json()
    live = (
        await client.post("/api/v1/tasks", json={"title": "=HYPERLINK(1)"}, headers=headers)
    ).json()
    await client.post(f"/api/v1/tasks/{live['id']}/categories/{category['id']}", headers=headers)
    gone = (
        await client.post("/api/v1/tasks", json={"title": "Deleted one"}, headers=headers)
    ).json()
    assert (await client.delete(f"/api/v1/tasks/{gone['id']}", headers=headers)).status_code == 204
    return {"category": category["id"], "live": live["id"], "gone": gone["id"]}


async def test_an_export_holds_the_profile_categories_and_every_task(
    client: httpx.AsyncClient, test_resources: Resources, broker: Redis
) -> None:
    account, stranger = await register(client), await register(client)
    ids = await _seed(client, account)
    await _seed(client, stranger)

    export = await _request(client, account)
    assert export["status"] == "pending" and export["download_url"] is None
    (job,) = await queued_jobs(broker, BUILD, queue="maintenance")
    assert job == {"export_id": export["id"]}
    shown = await _built(client, account, test_resources, export["id"])
    assert shown["status"] == "ready" and shown["size_bytes"] > 0

    response = await _download(client, shown["download_url"])
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/zip"
    assert response.headers["content-disposition"].startswith(
        'attachment; filename="taskpipe-export-'
    )
    assert int(response.headers["content-length"]) == shown["size_bytes"]
    document, rows = open_archive(response.content)

    assert document["format"] == 1
    assert document["profile"]["email"] == account.email
    assert "password_hash" not in str(document)
    assert [c["id"] for c in document["categories"]] == [ids["category"]]
    tasks = {task["id"]: task for task in document["tasks"]}
    assert set(tasks) == {ids["live"], ids["gone"]}  # soft-deleted ones too, no stranger's
    assert tasks[ids["gone"]]["deleted_at"] is not None
    assert tasks[ids["live"]]["category_ids"] == [ids["category"]]
    assert tasks[ids["live"]]["title"] == "=HYPERLINK(1)"  # JSON keeps text as it is
    by_id = {row["id"]: row for row in rows}
    assert set(by_id) == set(tasks)
    assert by_id[ids["live"]]["title"] == "'=HYPERLINK(1)"  # no formula for a spreadsheet
    assert by_id[ids["live"]]["categories"] == "Work"
    assert by_id[ids["gone"]]["deleted_at"] != ""
    assert {"export_requested", "export_downloaded"} <= set(
        await activity_kinds(client, account.headers)
    )


async def test_one_unfinished_export_at_a_time_and_a_few_a_day(
    client: httpx.AsyncClient, test_resources: Resources, configure: Any
) -> None:
    configure(exports_per_user_per_day=2)
    account = await register(client)
    first = await _request(client, account)
    running = await client.post(EXPORTS, headers=account.headers)
    assert running.status_code == 409
    assert running.json()["type"] == "urn:taskpipe:problem:export-running"
    await _built(client, account, test_resources, first["id"])
    await _request(client, account)
    spent = await client.post(EXPORTS, headers=account.headers)
    assert spent.status_code == 429 and "retry-after" in spent.headers


async def test_an_export_whose_job_was_lost_does_not_block_a_new_one(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    account = await register(client)
    lost = await _request(client, account)
    await session.execute(
        update(AccountExport).values(created_at=datetime.now(UTC) - timedelta(hours=2))
    )
    await session.flush()
    await _request(client, account)
    shown = (await client.get(f"{EXPORTS}/{lost['id']}", headers=account.headers)).json()
    assert shown["status"] == "failed" and shown["failure"]


async def test_an_archive_past_the_size_limit_fails_the_export(
    client: httpx.AsyncClient, test_resources: Resources
) -> None:
    account = await register(client)
    await _seed(client, account)
    export = await _request(client, account)
    small = test_resources.settings.model_copy(update={"export_max_bytes": 200})
    status = await build_export(test_resources.unit_of_work, small, uuid.UUID(export["id"]))
    assert status is ExportStatus.FAILED
    shown = (await client.get(f"{EXPORTS}/{export['id']}", headers=account.headers)).json()
    assert shown["status"] == "failed" and "200 bytes" in shown["failure"]
    assert shown["download_url"] is None


async def test_building_twice_stores_one_archive(
    client: httpx.AsyncClient, test_resources: Resources, session: AsyncSession
) -> None:
    account = await register(client)
    shown = await _built(client, account, test_resources, (await _request(client, account))["id"])
    again = await build_export(
        test_resources.unit_of_work, test_resources.settings, uuid.UUID(shown["id"])
    )
    assert again is None
    exports = (await session.execute(select(AccountExport.id))).scalars().all()
    assert [str(i) for i in exports] == [shown["id"]]


async def test_a_download_link_is_404_unless_right_ready_and_fresh(
    client: httpx.AsyncClient, test_resources: Resources, session: AsyncSession
) -> None:
    account = await register(client)
    pending = await _request(client, account)
    forged = f"/api/v1/exports/{pending['id']}/archive"
    assert (await client.get(forged, params={"token": "x" * 43})).status_code == 404
    await build_export(
        test_resources.unit_of_work, test_resources.settings, uuid.UUID(pending["id"])
    )
    shown = (await client.get(f"{EXPORTS}/{pending['id']}", headers=account.headers)).json()
    assert (await client.get(forged, params={"token": "x" * 43})).status_code == 404
    assert (await client.get(forged)).status_code == 400
    other = f"/api/v1/exports/{uuid.uuid4()}/archive"
    token = parse_qs(urlsplit(shown["download_url"]).query)["token"][0]
    assert (await client.get(other, params={"token": token})).status_code == 404

    await session.execute(
        update(AccountExport).values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
    )
    await session.flush()
    assert (await _download(client, shown["download_url"])).status_code == 404
    after = (await client.get(f"{EXPORTS}/{pending['id']}", headers=account.headers)).json()
    assert after["download_url"] is None

    report = await purge_expired_rows(
        test_resources.unit_of_work,
        now=datetime.now(UTC),
        retention=timedelta(days=30),
        batch_size=10,
    )
    assert report["account_exports"] == 1
    gone = await client.get(f"{EXPORTS}/{pending['id']}", headers=account.headers)
    assert gone.status_code == 404


async def test_another_users_export_is_404(client: httpx.AsyncClient) -> None:
    owner, stranger = await register(client), await register(client)
    export = await _request(client, owner)
    response = await client.get(f"{EXPORTS}/{export['id']}", headers=stranger.headers)
    assert response.status_code == 404
    assert (await client.get(f"{EXPORTS}/not-a-uuid", headers=owner.headers)).status_code == 400


@pytest.mark.parametrize("path", [EXPORTS, f"{EXPORTS}/{uuid.uuid4()}"])
async def test_export_routes_need_credentials(client: httpx.AsyncClient, path: str) -> None:
    method = "POST" if path == EXPORTS else "GET"
    assert (await client.request(method, path)).status_code == 401


async def test_a_download_is_streamed_slice_by_slice_and_whole(
    client: httpx.AsyncClient, test_resources: Resources, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("common.accounts.exports.DOWNLOAD_SLICE", 97)  # many odd slices
    account = await register(client)
    await _seed(client, account)
    shown = await _built(client, account, test_resources, (await _request(client, account))["id"])
    assert shown["size_bytes"] > 97 * 5
    response = await _download(client, shown["download_url"])
    assert len(response.content) == shown["size_bytes"]
    document, rows = open_archive(response.content)
    assert len(document["tasks"]) == len(rows) == 2


async def test_a_download_link_stops_when_the_account_is_deleted(
    client: httpx.AsyncClient, test_resources: Resources
) -> None:
    account = await register(client)
    shown = await _built(client, account, test_resources, (await _request(client, account))["id"])
    assert (await _download(client, shown["download_url"])).status_code == 200
    deleted = await client.request(
        "DELETE", "/api/v1/users/me", json={"password": PASSWORD}, headers=account.headers
    )
    assert deleted.status_code == 202
    assert (await _download(client, shown["download_url"])).status_code == 404
