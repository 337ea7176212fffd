"""Account jobs through a real Celery worker (and a real SMTP server for the mails)."""

from __future__ import annotations

import asyncio
import dataclasses
import time
import uuid
from collections.abc import Awaitable, Callable
from email.message import Message
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from fastapi import FastAPI
from redis.asyncio import Redis
from sqlalchemy import func, select

from api.resources import Resources
from common.auth.revocation import revoked_key
from common.models import User
from common.models.base import Base
from tests.support.accounts import bearer, open_archive
from tests.support.factories import PASSWORD, Account, login, register, unique_email
from tests.support.outage import without_security_redis
from tests.support.smtp import MailCatcher, text_part
from tests.support.worker import WorkerProcess

pytestmark = pytest.mark.worker

ME = "/api/v1/users/me"
SESSIONS = "/api/v1/users/me/sessions"


async def _eventually(check, timeout: float = 20.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.1)


async def test_a_session_ended_while_the_security_store_was_down_stays_ended_after(
    app: FastAPI,
    live_client: httpx.AsyncClient,
    resources: Resources,
    broker: Redis,
    celery_worker: WorkerProcess,
) -> None:
    """The API cannot write the revocation mark; the job enqueued with the change writes it
    once the store answers, so the ended session does not come back with Redis."""
    account = await register(live_client)
    other = (await login(live_client, account.email, PASSWORD)).json()
    sessions = (await live_client.get(SESSIONS, headers=account.headers)).json()["items"]
    (ended,) = [uuid.UUID(s["id"]) for s in sessions if not s["current"]]
    mark = revoked_key(uuid.UUID(account.user["id"]), ended)

    app.state.resources = without_security_redis(resources)
    try:
        assert (await live_client.delete(SESSIONS, headers=account.headers)).status_code == 204
    finally:
        await app.state.resources.security_redis.aclose()
        app.state.resources = resources

    async def marked() -> bool:
        return bool(await broker.exists(mark))

    await _eventually(marked)
    assert (await live_client.get(ME, headers=bearer(other["access_token"]))).status_code == 401


async def _mails(mailbox: MailCatcher, address: str, count: int = 1) -> list[Message]:
    return await asyncio.to_thread(mailbox.wait_for, address, count, 30.0)


def _link(message: Message, route: str) -> tuple[str, dict[str, list[str]]]:
    link = next(word for word in text_part(message).split() if f"/api/v1/auth/{route}?" in word)
    parts = urlsplit(link)
    return parts.path, parse_qs(parts.query)


async def verified_account(client: httpx.AsyncClient, mailbox: MailCatcher) -> Account:
    account = await register(client)
    (mail,) = await _mails(mailbox, account.email)
    path, query = _link(mail, "verify-email")
    assert (await client.get(path, params=query)).status_code == 200
    return account


async def test_a_changed_password_is_notified_even_through_an_smtp_hiccup(
    live_client: httpx.AsyncClient, mailbox: MailCatcher, celery_worker: WorkerProcess
) -> None:
    account = await verified_account(live_client, mailbox)
    mailbox.fail_next = 1  # SMTP refuses once: the mail policy retries
    response = await live_client.post(
        "/api/v1/users/me/password",
        json={"current_password": PASSWORD, "new_password": "Brand-New-Secret-7"},
        headers={**account.headers, "User-Agent": "Laptop/2.0"},
    )
    assert response.status_code == 204
    _, notice = await _mails(mailbox, account.email, count=2)
    assert notice["Subject"] == "Your Taskpipe password was changed"
    assert notice["X-Taskpipe-Idempotency-Key"].startswith("notice:")
    text = text_part(notice)
    assert "127.0.0.0/24" in text and "Laptop/2.0" in text
    assert "127.0.0.1" not in text
    assert mailbox.deliveries_started == 3  # verification, refused notice, notice


async def test_an_address_change_mails_the_link_to_the_new_address_and_a_notice_to_the_old(
    live_client: httpx.AsyncClient, mailbox: MailCatcher, celery_worker: WorkerProcess
) -> None:
    account = await verified_account(live_client, mailbox)
    new_email = unique_email("moved")
    response = await live_client.post(
        "/api/v1/users/me/email",
        json={"new_email": new_email, "password": PASSWORD},
        headers=account.headers,
    )
    assert response.status_code == 202
    (confirm,) = await _mails(mailbox, new_email)
    assert confirm["Subject"] == "Confirm your new email address for Taskpipe"
    assert "Ada" not in text_part(confirm)  # the new address is nobody's verified one yet
    _, notice = await _mails(mailbox, account.email, count=2)
    assert notice["Subject"] == "Your Taskpipe account is moving to another address"
    assert new_email in text_part(notice)

    path, query = _link(confirm, "confirm-email-change")
    confirmed = await live_client.get(path, params=query)
    assert confirmed.status_code == 200 and confirmed.json()["email"] == new_email


async def test_the_worker_builds_the_export_and_mails_a_link_that_downloads_it(
    live_client: httpx.AsyncClient, mailbox: MailCatcher, celery_worker: WorkerProcess
) -> None:
    account = await verified_account(live_client, mailbox)
    created = await live_client.post(
        "/api/v1/tasks", json={"title": "Write the report"}, headers=account.headers
    )
    assert created.status_code == 201
    requested = await live_client.post("/api/v1/users/me/exports", headers=account.headers)
    assert requested.status_code == 202
    _, mail = await _mails(mailbox, account.email, count=2)
    assert mail["Subject"] == "Your Taskpipe export is ready"
    link = next(word for word in text_part(mail).split() if "/archive?token=" in word)
    parts = urlsplit(link)
    download = await live_client.get(parts.path, params=parse_qs(parts.query))
    assert download.status_code == 200
    document, rows = open_archive(download.content)
    assert [task["title"] for task in document["tasks"]] == ["Write the report"]
    assert rows[0]["title"] == "Write the report"
    shown = await live_client.get(
        f"/api/v1/users/me/exports/{requested.json()['id']}", headers=account.headers
    )
    assert shown.json()["status"] == "ready"


def _users_rows(resources: Resources) -> Callable[[str], Awaitable[dict[str, int]]]:
    async def count(user_id: str) -> dict[str, int]:
        async with resources.session_factory() as session:
            return {
                table.name: int(
                    await session.scalar(
                        select(func.count())
                        .select_from(table)
                        .where(table.c.user_id == uuid.UUID(user_id))
                    )
                    or 0
                )
                for table in Base.metadata.sorted_tables
                if "user_id" in table.c
            }

    return count


async def test_an_account_deleted_without_grace_is_mailed_then_erased_and_counted(
    app: FastAPI,
    live_client: httpx.AsyncClient,
    resources: Resources,
    broker: Redis,
    mailbox: MailCatcher,
    celery_worker: WorkerProcess,
) -> None:
    account = await verified_account(live_client, mailbox)
    await live_client.post("/api/v1/tasks", json={"title": "Mine"}, headers=account.headers)
    erased_before = int(await broker.hget("taskpipe:stats:accounts", "erased") or 0)
    now_settings = resources.settings.model_copy(update={"account_deletion_grace_days": 0})
    app.state.resources = dataclasses.replace(resources, settings=now_settings)
    try:
        response = await live_client.request(
            "DELETE", "/api/v1/users/me", json={"password": PASSWORD}, headers=account.headers
        )
    finally:
        app.state.resources = resources
    assert response.status_code == 202
    _, notice = await _mails(mailbox, account.email, count=2)
    assert notice["Subject"] == "Your Taskpipe account is being deleted"
    assert "being erased now" in text_part(notice)
    rows = _users_rows(resources)

    async def erased() -> bool:
        return set((await rows(account.user["id"])).values()) == {0}

    await _eventually(erased)
    async with resources.session_factory() as session:
        assert await session.get(User, uuid.UUID(account.user["id"])) is None

    async def counted() -> bool:
        return int(await broker.hget("taskpipe:stats:accounts", "erased") or 0) == erased_before + 1

    await _eventually(counted)


async def test_the_deletion_notice_carries_a_token_that_restores_the_account(
    live_client: httpx.AsyncClient, mailbox: MailCatcher, celery_worker: WorkerProcess
) -> None:
    account = await verified_account(live_client, mailbox)
    response = await live_client.request(
        "DELETE", "/api/v1/users/me", json={"password": PASSWORD}, headers=account.headers
    )
    assert response.status_code == 202
    _, notice = await _mails(mailbox, account.email, count=2)
    token = next(
        line.split(":", 1)[1].strip()
        for line in text_part(notice).splitlines()
        if line.startswith("Token:")
    )
    restored = await live_client.post("/api/v1/auth/restore-account", json={"token": token})
    assert restored.status_code == 200
    assert (await login(live_client, account.email, PASSWORD)).status_code == 200
