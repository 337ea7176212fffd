"""The whole platform over real HTTP: uvicorn, a Celery worker, PostgreSQL, Redis and SMTP.

register -> the verification mail arrives through the worker -> its link verifies ->
login -> refresh -> the old refresh token is refused and its family revoked -> logout.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import pytest

from tests.support.api_server import api_server as running_api_server
from tests.support.smtp import MailCatcher, text_part
from tests.support.worker import WorkerProcess

pytestmark = pytest.mark.worker


@pytest.fixture
def api_server(database: str, committed_data: None) -> Iterator[str]:
    with running_api_server() as base_url:
        yield base_url


async def test_register_verify_login_refresh_reuse_logout(
    api_server: str, celery_worker: WorkerProcess, mailbox: MailCatcher
) -> None:
    email = "e2e.flow@example.com"
    password = "Correct-Horse-9"
    async with httpx.AsyncClient(base_url=api_server) as http:
        registered = await http.post(
            "/api/v1/auth/register",
            json={"email": email, "password": password, "full_name": "End To End"},
        )
        assert registered.status_code == 201
        assert registered.json()["user"]["is_active"] is False

        (mail,) = await asyncio.to_thread(mailbox.wait_for, email, 1, 30.0)
        link = next(w for w in text_part(mail).split() if "verify-email?token=" in w)
        parts = urlsplit(link)
        verified = await http.get(f"{parts.path}?{parts.query}")
        assert verified.status_code == 200
        assert verified.json()["is_active"] is True

        logged_in = await http.post(
            "/api/v1/auth/login", json={"email": email, "password": password}
        )
        assert logged_in.status_code == 200
        first = logged_in.json()

        refreshed = await http.post(
            "/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]}
        )
        assert refreshed.status_code == 200
        second = refreshed.json()

        reused = await http.post(
            "/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]}
        )
        assert reused.status_code == 401
        family_gone = await http.post(
            "/api/v1/auth/refresh", json={"refresh_token": second["refresh_token"]}
        )
        assert family_gone.status_code == 401

        again = (
            await http.post("/api/v1/auth/login", json={"email": email, "password": password})
        ).json()
        me = await http.get(
            "/api/v1/users/me", headers={"Authorization": f"Bearer {again['access_token']}"}
        )
        assert me.status_code == 200
        assert me.json()["is_active"] is True
        out = await http.post("/api/v1/auth/logout", json={"refresh_token": again["refresh_token"]})
        assert out.status_code == 204
        after = await http.get(
            "/api/v1/users/me", headers={"Authorization": f"Bearer {again['access_token']}"}
        )
        assert after.status_code == 401
