"""Verification and reset mails through a real Celery worker and a real SMTP server."""

from __future__ import annotations

import asyncio
import time
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlalchemy import func, select

from api.resources import Resources
from common.models import SentEmail
from tests.support.factories import register
from tests.support.smtp import MailCatcher, html_part, text_part
from tests.support.worker import WorkerProcess

pytestmark = pytest.mark.worker


def _link_in(text: str) -> str:
    return next(word for word in text.split() if "/api/v1/auth/verify-email?token=" in word)


async def _wait_for_mail(
    mailbox: MailCatcher, address: str, count: int = 1, timeout: float = 30.0
) -> list:  # type: ignore[type-arg]
    return await asyncio.to_thread(mailbox.wait_for, address, count, timeout)


async def test_registration_mail_arrives_and_its_link_verifies(
    live_client: httpx.AsyncClient, mailbox: MailCatcher, celery_worker: WorkerProcess
) -> None:
    account = await register(live_client, full_name="Ada <script>alert(1)</script>")
    (mail,) = await _wait_for_mail(mailbox, account.email)
    assert mail["Subject"] == "Confirm your email address for Taskpipe"
    text, html = text_part(mail), html_part(mail)
    # The name is the registrant's text, mailed to an address nobody verified yet: left out.
    assert "Ada" not in text and "script" not in html
    link = _link_in(text)
    assert link.startswith("http://testserver/api/v1/auth/verify-email?token=")
    assert link.replace("&", "&amp;") in html or link in html

    parts = urlsplit(link)
    response = await live_client.get(parts.path, params=parse_qs(parts.query))
    assert response.status_code == 200
    assert response.json()["is_active"] is True


async def test_password_reset_mail_carries_a_working_token(
    live_client: httpx.AsyncClient, mailbox: MailCatcher, celery_worker: WorkerProcess
) -> None:
    account = await register(live_client)
    await _wait_for_mail(mailbox, account.email)
    await live_client.post("/api/v1/auth/forgot-password", json={"email": account.email})
    mails = await _wait_for_mail(mailbox, account.email, count=2)
    reset = next(m for m in mails if m["Subject"] == "Reset your Taskpipe password")
    token = next(
        line.split(":", 1)[1].strip()
        for line in text_part(reset).splitlines()
        if line.startswith("Token:")
    )
    response = await live_client.post(
        "/api/v1/auth/reset-password", json={"token": token, "new_password": "Brand-New-Secret-7"}
    )
    assert response.status_code == 200


async def test_smtp_outage_is_retried_until_the_mail_arrives(
    live_client: httpx.AsyncClient, mailbox: MailCatcher, celery_worker: WorkerProcess
) -> None:
    mailbox.fail_next = 2  # the server answers 451 twice, then accepts
    account = await register(live_client)
    (mail,) = await _wait_for_mail(mailbox, account.email, timeout=45)
    assert mailbox.deliveries_started == 3
    assert mail["X-Taskpipe-Idempotency-Key"].startswith("action:")


async def test_a_redelivered_job_does_not_mail_twice(
    live_client: httpx.AsyncClient,
    mailbox: MailCatcher,
    celery_worker: WorkerProcess,
    resources: Resources,
) -> None:
    from worker.app import app as celery_app

    account = await register(live_client)
    await _wait_for_mail(mailbox, account.email)
    async with resources.session_factory() as session:
        key = (await session.execute(select(SentEmail.idempotency_key))).scalar_one()
    token_id = key.removeprefix("action:")
    # The broker hands the same job out again (as after a crash before the ack).
    celery_app.send_task(
        "taskpipe.email.send_verification", kwargs={"token_id": token_id}, queue="email"
    )
    await asyncio.sleep(3)
    assert len(mailbox.to(account.email)) == 1
    async with resources.session_factory() as session:
        assert (
            await session.execute(select(func.count()).select_from(SentEmail))
        ).scalar_one() == 1


async def test_job_logs_carry_the_request_id_of_the_api_call_across_retries(
    live_client: httpx.AsyncClient, mailbox: MailCatcher, celery_worker: WorkerProcess
) -> None:
    email = "traced@example.com"
    mailbox.fail_next = 1  # the id must survive a retry too
    response = await live_client.post(
        "/api/v1/auth/register",
        json={"email": email, "password": "Correct-Horse-9", "full_name": "Tracy"},
        headers={"X-Request-ID": "trace-me-42"},
    )
    assert response.status_code == 201
    await _wait_for_mail(mailbox, email)

    def sent_lines() -> list[str]:
        return [
            line
            for line in celery_worker.log_text().splitlines()
            if '"mail_sent"' in line and "trace-me-42" in line
        ]

    deadline = time.monotonic() + 10  # the log line follows the SMTP hand-off
    while time.monotonic() < deadline and not sent_lines():
        await asyncio.sleep(0.1)
    assert sent_lines(), celery_worker.log_text()[-3000:]
