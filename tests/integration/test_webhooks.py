"""Webhook endpoints through the API: create (secret once), read, change, rotate, test,
delete, the deliveries log and redelivery; URL checks against SSRF; limits. Deliveries are
written in the transaction of the change they report; the worker's side is
tests/worker/test_webhook_jobs.py."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from api.resources import Resources
from common.jobs import JobName, Queue
from common.models import OutboxJob, WebhookDelivery
from common.webhooks.signing import secret_key
from tests.support.factories import register
from tests.support.tasks import CATEGORIES, TASKS, assign, create_category, create_task
from tests.support.webhook_receiver import FakeDNS
from tests.support.webhooks import (
    DNS,
    PUBLIC_URL,
    WEBHOOKS,
    create_webhook,
    deliveries,
    webhook_client,
    webhook_owner,
)


@pytest.fixture
async def hooks(app: FastAPI, test_resources: Resources) -> AsyncIterator[httpx.AsyncClient]:
    async with webhook_client(app, test_resources) as client:
        yield client


def _url(webhook_id: str) -> str:
    return f"{WEBHOOKS}/{webhook_id}"


def _fields(response: httpx.Response) -> set[str]:
    """The body fields named, without item indexes (`events.0` is `events`)."""
    return {error["field"].split(".")[0] for error in response.json().get("errors", [])}


async def _jobs(session: AsyncSession) -> list[OutboxJob]:
    rows = await session.execute(
        select(OutboxJob).where(OutboxJob.task_name == JobName.DELIVER_WEBHOOK)
    )
    return list(rows.scalars())


# Endpoints ------------------------------------------------------------------------------


async def test_create_answers_the_secret_once(
    hooks: httpx.AsyncClient, test_resources: Resources
) -> None:
    account = await webhook_owner(hooks, test_resources)
    response = await hooks.post(
        WEBHOOKS,
        json={
            "url": "https://HOOKS.example.com./taskpipe?x=1",
            "events": ["task.completed", "category.*", "task.completed"],
            "description": "CRM sync",
        },
        headers=account.headers,
    )
    assert response.status_code == 201, response.text
    assert response.headers["Cache-Control"] == "no-store"  # the secret, shown once
    created = response.json()
    assert response.headers["Location"] == _url(created["id"])
    assert created["url"] == "https://hooks.example.com/taskpipe?x=1"
    assert created["events"] == ["category.*", "task.completed"]
    assert created["enabled"] is True
    assert created["description"] == "CRM sync"
    assert len(secret_key(created["secret"])) == 32
    fetched = (await hooks.get(_url(created["id"]), headers=account.headers)).json()
    assert "secret" not in fetched
    assert fetched == {k: v for k, v in created.items() if k != "secret"}
    listed = (await hooks.get(WEBHOOKS, headers=account.headers)).json()
    assert listed == {"items": [fetched], "total": 1}


async def test_only_a_verified_account_creates_webhooks(hooks: httpx.AsyncClient) -> None:
    """Each webhook makes this server POST to a host of the user's choosing: a throwaway
    account must not aim that at someone else's server."""
    account = await register(hooks)
    response = await hooks.post(
        WEBHOOKS, json={"url": PUBLIC_URL, "events": ["task.*"]}, headers=account.headers
    )
    assert response.status_code == 403
    assert response.json()["type"].endswith("email-not-verified")


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://hooks.example.com/x", "only https"),
        ("https://127.0.0.1/x", "loopback"),
        ("https://169.254.169.254/latest/meta-data/", "metadata"),
        ("https://10.0.0.1/x", "private"),
        ("https://[::1]/x", "loopback"),
        ("https://0x7f000001/x", "standard form"),
        ("https://loopback.example.com/x", "resolves to a loopback"),
        ("https://metadata.example.com/x", "resolves to a cloud metadata"),
        ("https://private.example.com/x", "resolves to a private"),
        ("https://mixed.example.com/x", "resolves to a private"),
        ("https://metadata.google.internal/x", "metadata"),
        ("https://unknown.example.com/x", "could not be resolved"),
        ("https://user:pw@hooks.example.com/x", "credentials"),
        ("not a url", "URL"),
    ],
)
async def test_targets_that_are_not_public_https_are_refused(
    hooks: httpx.AsyncClient,
    url: str,
    reason: str,
    test_resources: Resources,
) -> None:
    account = await webhook_owner(hooks, test_resources)
    response = await hooks.post(
        WEBHOOKS, json={"url": url, "events": ["task.*"]}, headers=account.headers
    )
    assert response.status_code == 400, response.text
    assert _fields(response) == {"url"}
    assert reason in response.json()["errors"][0]["msg"]
    assert (await hooks.get(WEBHOOKS, headers=account.headers)).json()["total"] == 0


async def test_localhost_by_name_is_refused_with_the_real_resolver(
    app: FastAPI, test_resources: Resources
) -> None:
    """`localhost` from the machine's own resolver (/etc/hosts), not from a test table."""
    from common.webhooks.targets import system_resolver

    async with webhook_client(app, test_resources, dns=system_resolver) as client:  # type: ignore[arg-type]
        account = await webhook_owner(client, test_resources)
        response = await client.post(
            WEBHOOKS,
            json={"url": "https://localhost:8443/x", "events": ["task.*"]},
            headers=account.headers,
        )
    assert response.status_code == 400
    assert "loopback" in response.json()["errors"][0]["msg"]


async def test_allow_insecure_admits_http_and_loopback_but_never_private_or_metadata(
    app: FastAPI, test_resources: Resources
) -> None:
    async with webhook_client(app, test_resources, webhook_allow_insecure=True) as client:
        account = await webhook_owner(client, test_resources)
        created = await create_webhook(client, account, "http://127.0.0.1:9/hook")
        assert created["url"] == "http://127.0.0.1:9/hook"
        for url in ("http://10.0.0.1/x", "http://169.254.169.254/x", "http://private.example.com"):
            response = await client.post(
                WEBHOOKS, json={"url": url, "events": ["task.*"]}, headers=account.headers
            )
            assert response.status_code == 400, url


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"events": ["task.*"]}, "url"),
        ({"url": PUBLIC_URL}, "events"),
        ({"url": PUBLIC_URL, "events": []}, "events"),
        ({"url": PUBLIC_URL, "events": ["task.exploded"]}, "events"),
        ({"url": PUBLIC_URL, "events": ["webhook.test"]}, "events"),
        ({"url": PUBLIC_URL, "events": "task.*"}, "events"),
        ({"url": PUBLIC_URL, "events": ["x" * 41]}, "events"),
        ({"url": PUBLIC_URL, "events": ["task.*"] * 20}, "events"),
        ({"url": 7, "events": ["task.*"]}, "url"),
        ({"url": "https://hooks.example.com/" + "a" * 2048, "events": ["task.*"]}, "url"),
        ({"url": PUBLIC_URL, "events": ["task.*"], "description": "x" * 201}, "description"),
        ({"url": PUBLIC_URL, "events": ["task.*"], "description": "a\x00b"}, "description"),
        ({"url": PUBLIC_URL, "events": ["task.*"], "secret": "whsec_mine"}, "secret"),
        ({"url": PUBLIC_URL, "events": ["task.*"], "id": str(uuid.uuid4())}, "id"),
    ],
)
async def test_bad_input_is_a_400_naming_the_field(
    hooks: httpx.AsyncClient,
    body: dict[str, Any],
    field: str,
    test_resources: Resources,
) -> None:
    account = await webhook_owner(hooks, test_resources)
    response = await hooks.post(WEBHOOKS, json=body, headers=account.headers)
    assert response.status_code == 400, response.text
    assert field in _fields(response)


async def test_an_account_has_a_bounded_number_of_webhooks(
    app: FastAPI, test_resources: Resources
) -> None:
    async with webhook_client(app, test_resources, webhooks_per_user=2) as client:
        account = await webhook_owner(client, test_resources)
        first = await create_webhook(client, account)
        await create_webhook(client, account)
        response = await client.post(
            WEBHOOKS, json={"url": PUBLIC_URL, "events": ["task.*"]}, headers=account.headers
        )
        assert response.status_code == 409
        assert response.json()["type"].endswith("webhook-limit-reached")
        assert (await client.delete(_url(first["id"]), headers=account.headers)).status_code == 204
        await create_webhook(client, account)
        other = await webhook_owner(client, test_resources)
        await create_webhook(client, other)  # the cap is per account


async def test_creates_changes_tests_and_redeliveries_share_a_tighter_limit(
    app: FastAPI, test_resources: Resources
) -> None:
    dns = FakeDNS(DNS)
    async with webhook_client(app, test_resources, dns=dns, webhook_rate_limit=3) as client:
        account = await webhook_owner(client, test_resources)
        webhook = await create_webhook(client, account)
        assert (
            await client.patch(
                _url(webhook["id"]), json={"events": ["task.*"]}, headers=account.headers
            )
        ).status_code == 200
        assert (
            await client.post(f"{_url(webhook['id'])}/test", headers=account.headers)
        ).status_code == 202
        lookups = len(dns.lookups)
        refused = await client.post(
            WEBHOOKS, json={"url": PUBLIC_URL, "events": ["task.*"]}, headers=account.headers
        )
        assert refused.status_code == 429
        assert int(refused.headers["Retry-After"]) > 0
        assert len(dns.lookups) == lookups  # refused before any DNS
        assert (await client.get(_url(webhook["id"]), headers=account.headers)).status_code == 200
        other = await webhook_owner(client, test_resources)
        await create_webhook(client, other)


async def test_patch_changes_what_is_sent_and_checks_a_new_url(
    hooks: httpx.AsyncClient, test_resources: Resources
) -> None:
    account = await webhook_owner(hooks, test_resources)
    webhook = await create_webhook(hooks, account)
    response = await hooks.patch(
        _url(webhook["id"]),
        json={"events": ["task.completed"], "description": "Only completions"},
        headers=account.headers,
    )
    assert response.status_code == 200
    assert response.json()["events"] == ["task.completed"]
    assert response.json()["description"] == "Only completions"
    assert response.json()["url"] == PUBLIC_URL
    for body, field in [
        ({"url": "https://10.0.0.1/"}, "url"),
        ({"url": None}, "url"),
        ({"events": None}, "events"),
        ({"enabled": "yes"}, "enabled"),
        ({"secret": "whsec_x"}, "secret"),
    ]:
        refused = await hooks.patch(_url(webhook["id"]), json=body, headers=account.headers)
        assert refused.status_code == 400, body
        assert field in _fields(refused)
    cleared = await hooks.patch(
        _url(webhook["id"]), json={"description": None}, headers=account.headers
    )
    assert cleared.json()["description"] is None


async def test_disabling_and_enabling(
    hooks: httpx.AsyncClient, session: AsyncSession, test_resources: Resources
) -> None:
    account = await webhook_owner(hooks, test_resources)
    webhook = await create_webhook(hooks, account)
    off = await hooks.patch(_url(webhook["id"]), json={"enabled": False}, headers=account.headers)
    assert off.json()["enabled"] is False
    assert off.json()["disabled_reason"] == "disabled by its owner"
    await create_task(hooks, account)
    assert await deliveries(hooks, account, webhook["id"]) == []
    test = await hooks.post(f"{_url(webhook['id'])}/test", headers=account.headers)
    assert test.status_code == 409
    assert test.json()["type"].endswith("webhook-disabled")
    on = await hooks.patch(_url(webhook["id"]), json={"enabled": True}, headers=account.headers)
    assert on.json()["enabled"] is True
    assert on.json()["disabled_at"] is None
    await create_task(hooks, account)
    assert len(await deliveries(hooks, account, webhook["id"])) == 1


async def test_rotating_keeps_the_old_secret_signing_for_a_day(
    hooks: httpx.AsyncClient, test_resources: Resources
) -> None:
    account = await webhook_owner(hooks, test_resources)
    webhook = await create_webhook(hooks, account)
    response = await hooks.post(f"{_url(webhook['id'])}/rotate-secret", headers=account.headers)
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    rotated = response.json()
    assert rotated["secret"] != webhook["secret"]
    grace = datetime.fromisoformat(rotated["previous_secret_expires_at"]) - datetime.now(UTC)
    assert timedelta(hours=23, minutes=59) < grace <= timedelta(hours=24)
    fetched = (await hooks.get(_url(webhook["id"]), headers=account.headers)).json()
    assert "secret" not in fetched
    assert fetched["previous_secret_expires_at"] == rotated["previous_secret_expires_at"]


async def test_delete_removes_the_webhook_and_its_log(
    hooks: httpx.AsyncClient,
    session: AsyncSession,
    test_resources: Resources,
) -> None:
    account = await webhook_owner(hooks, test_resources)
    webhook = await create_webhook(hooks, account)
    await create_task(hooks, account)
    assert (await hooks.delete(_url(webhook["id"]), headers=account.headers)).status_code == 204
    assert (await hooks.get(_url(webhook["id"]), headers=account.headers)).status_code == 404
    assert (await hooks.delete(_url(webhook["id"]), headers=account.headers)).status_code == 404
    remaining = await session.scalar(
        select(WebhookDelivery.id).where(WebhookDelivery.endpoint_id == uuid.UUID(webhook["id"]))
    )
    assert remaining is None


async def test_another_users_webhook_is_404_on_every_route(
    hooks: httpx.AsyncClient, test_resources: Resources
) -> None:
    owner, intruder = (
        await webhook_owner(hooks, test_resources),
        await webhook_owner(hooks, test_resources),
    )
    webhook = await create_webhook(hooks, owner)
    await create_task(hooks, owner)
    (delivery,) = await deliveries(hooks, owner, webhook["id"])
    headers = intruder.headers
    base = _url(webhook["id"])
    responses = [
        await hooks.get(base, headers=headers),
        await hooks.patch(base, json={"description": "mine"}, headers=headers),
        await hooks.delete(base, headers=headers),
        await hooks.post(f"{base}/rotate-secret", headers=headers),
        await hooks.post(f"{base}/test", headers=headers),
        await hooks.get(f"{base}/deliveries", headers=headers),
        await hooks.post(f"{base}/deliveries/{delivery['id']}/redeliver", headers=headers),
    ]
    assert [r.status_code for r in responses] == [404] * len(responses)
    mine = await create_webhook(hooks, intruder)
    crossed = await hooks.post(
        f"{_url(mine['id'])}/deliveries/{delivery['id']}/redeliver", headers=headers
    )
    assert crossed.status_code == 404
    assert (await hooks.get(WEBHOOKS, headers=headers)).json()["total"] == 1
    still = (await hooks.get(base, headers=owner.headers)).json()
    assert still["description"] is None


async def test_webhook_routes_need_a_token_and_well_formed_ids(
    hooks: httpx.AsyncClient, test_resources: Resources
) -> None:
    some = str(uuid.uuid4())
    for method, url in [
        ("POST", WEBHOOKS),
        ("GET", WEBHOOKS),
        ("GET", _url(some)),
        ("PATCH", _url(some)),
        ("DELETE", _url(some)),
        ("POST", f"{_url(some)}/rotate-secret"),
        ("POST", f"{_url(some)}/test"),
        ("GET", f"{_url(some)}/deliveries"),
        ("POST", f"{_url(some)}/deliveries/{some}/redeliver"),
    ]:
        assert (await hooks.request(method, url)).status_code == 401, (method, url)
    account = await webhook_owner(hooks, test_resources)
    assert (await hooks.get(_url("nope"), headers=account.headers)).status_code == 400
    webhook = await create_webhook(hooks, account)
    bad = await hooks.post(
        f"{_url(webhook['id'])}/deliveries/nope/redeliver", headers=account.headers
    )
    assert bad.status_code == 400
    missing = await hooks.post(
        f"{_url(webhook['id'])}/deliveries/{some}/redeliver", headers=account.headers
    )
    assert missing.status_code == 404
    for params in ({"limit": 0}, {"limit": 101}, {"page": 0}, {"page": "x"}):
        listed = await hooks.get(
            f"{_url(webhook['id'])}/deliveries", params=params, headers=account.headers
        )
        assert listed.status_code == 400, params


# Deliveries owed ------------------------------------------------------------------------


async def test_every_subscribed_change_is_owed_in_its_own_transaction(
    hooks: httpx.AsyncClient,
    session: AsyncSession,
    test_resources: Resources,
) -> None:
    account = await webhook_owner(hooks, test_resources)
    everything = await create_webhook(hooks, account)
    completions = await create_webhook(hooks, account, events=["task.completed"])
    categories = await create_webhook(hooks, account, events=["category.*"])

    task = await create_task(hooks, account, title="Ship it", due_date="2027-01-04T09:00:00Z")
    category = await create_category(hooks, account, "Work")
    await assign(hooks, account, task["id"], category["id"])
    await hooks.patch(
        f"{TASKS}/{task['id']}",
        json={"status": "completed"},
        headers={**account.headers, "If-Match": "*"},
    )
    await hooks.patch(
        f"{CATEGORIES}/{category['id']}", json={"name": "Deep work"}, headers=account.headers
    )
    await hooks.delete(f"{TASKS}/{task['id']}", headers=account.headers)
    await hooks.delete(f"{CATEGORIES}/{category['id']}", headers=account.headers)

    owed = [d["event"] for d in reversed(await deliveries(hooks, account, everything["id"]))]
    assert owed == [
        "task.created",
        "category.created",
        "task.updated",
        "task.completed",
        "category.updated",
        "task.deleted",
        "category.deleted",
    ]
    assert [d["event"] for d in await deliveries(hooks, account, completions["id"])] == [
        "task.completed"
    ]
    assert [d["event"] for d in await deliveries(hooks, account, categories["id"])] == [
        "category.deleted",
        "category.updated",
        "category.created",
    ]
    log = {d["event"]: d for d in await deliveries(hooks, account, everything["id"])}
    completed = log["task.completed"]
    assert completed["status"] == "pending"
    assert completed["attempts"] == []
    assert completed["payload"]["type"] == "task.completed"
    assert completed["payload"]["data"]["title"] == "Ship it"
    assert completed["payload"]["data"]["status"] == "completed"
    assert [c["name"] for c in completed["payload"]["data"]["categories"]] == ["Work"]
    assert log["task.deleted"]["payload"]["data"] == {"id": task["id"]}
    assert log["category.updated"]["payload"]["data"]["name"] == "Deep work"
    assert log["category.deleted"]["payload"]["data"] == {"id": category["id"]}
    at = datetime.fromisoformat(completed["payload"]["timestamp"])
    assert abs(at - datetime.now(UTC)) < timedelta(minutes=1)
    retry_until = datetime.fromisoformat(completed["retry_until"])
    assert timedelta(hours=23) < retry_until - at <= timedelta(hours=24)

    jobs = await _jobs(session)
    assert len(jobs) == 7 + 1 + 3
    assert {job.queue for job in jobs} == {Queue.WEBHOOKS}
    assert all(job.kwargs["round"] == 1 for job in jobs)


async def test_completing_a_recurring_task_reports_the_completion_and_the_new_occurrence(
    hooks: httpx.AsyncClient,
    test_resources: Resources,
) -> None:
    account = await webhook_owner(hooks, test_resources)
    webhook = await create_webhook(hooks, account, events=["task.*"])
    task = await create_task(
        hooks, account, due_date="2027-01-04T09:00:00Z", recurrence="FREQ=DAILY"
    )
    done = await hooks.patch(
        f"{TASKS}/{task['id']}",
        json={"status": "completed"},
        headers={**account.headers, "If-Match": "*"},
    )
    following = done.json()["next_occurrence"]
    owed = {
        (d["event"], d["payload"]["data"]["id"])
        for d in await deliveries(hooks, account, webhook["id"])
    }
    assert owed == {
        ("task.created", task["id"]),
        ("task.completed", task["id"]),
        ("task.created", following["id"]),
    }


async def test_nothing_is_owed_for_unchanged_data_or_other_users(
    hooks: httpx.AsyncClient, test_resources: Resources
) -> None:
    account, stranger = (
        await webhook_owner(hooks, test_resources),
        await webhook_owner(hooks, test_resources),
    )
    webhook = await create_webhook(hooks, account)
    task = await create_task(hooks, account)
    await hooks.patch(
        f"{TASKS}/{task['id']}",
        json={"title": task["title"]},
        headers={**account.headers, "If-Match": "*"},
    )
    await create_task(hooks, stranger)
    assert [d["event"] for d in await deliveries(hooks, account, webhook["id"])] == ["task.created"]


async def test_a_test_event_and_a_redelivery_are_queued_for_the_worker(
    hooks: httpx.AsyncClient,
    session: AsyncSession,
    test_resources: Resources,
) -> None:
    account = await webhook_owner(hooks, test_resources)
    webhook = await create_webhook(hooks, account, events=["task.deleted"])
    response = await hooks.post(f"{_url(webhook['id'])}/test", headers=account.headers)
    assert response.status_code == 202
    test = response.json()
    assert test["event"] == "webhook.test"
    assert test["status"] == "pending"
    assert test["payload"]["data"]["webhook_id"] == webhook["id"]
    assert (await deliveries(hooks, account, webhook["id"]))[0]["id"] == test["id"]

    await session.execute(
        WebhookDelivery.__table__.update()
        .where(WebhookDelivery.id == uuid.UUID(test["id"]))
        .values(status="failed", finished_at=datetime.now(UTC))
    )
    again = await hooks.post(
        f"{_url(webhook['id'])}/deliveries/{test['id']}/redeliver", headers=account.headers
    )
    assert again.status_code == 202
    assert again.json()["status"] == "pending"
    assert again.json()["finished_at"] is None
    assert again.json()["payload"] == test["payload"]
    rounds = sorted(job.kwargs["round"] for job in await _jobs(session))
    assert rounds == [1, 2]
    assert {job.kwargs["delivery_id"] for job in await _jobs(session)} == {test["id"]}


async def test_deliveries_are_paged_newest_first(
    hooks: httpx.AsyncClient, test_resources: Resources
) -> None:
    account = await webhook_owner(hooks, test_resources)
    webhook = await create_webhook(hooks, account)
    created = [await create_task(hooks, account, title=f"Task {i}") for i in range(5)]
    first = await deliveries(hooks, account, webhook["id"], limit=2)
    third = await deliveries(hooks, account, webhook["id"], limit=2, page=3)
    assert [d["payload"]["data"]["title"] for d in first] == ["Task 4", "Task 3"]
    assert [d["payload"]["data"]["title"] for d in third] == ["Task 0"]
    assert len(created) == 5


def test_an_oversized_body_is_sent_thin() -> None:
    from common.webhooks.events import MAX_PAYLOAD_BYTES, Event, EventType, body_for

    event = Event(uuid.uuid4(), EventType.TASK_UPDATED, uuid.uuid4())
    large = orjson.dumps({"id": str(event.subject_id), "title": "x" * MAX_PAYLOAD_BYTES})
    body = orjson.loads(body_for(event, large, datetime.now(UTC)))
    assert body["data"] == {"id": str(event.subject_id), "truncated": True}
    small = orjson.loads(body_for(event, b'{"id": "1"}', datetime.now(UTC)))
    assert small["data"] == {"id": "1"}
