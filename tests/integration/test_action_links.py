"""A mailed link is looked up and judged by one rule on both sides: the worker mails exactly
the links the API would still accept."""

from __future__ import annotations

import uuid

import httpx
from redis.asyncio import Redis

from api.resources import Resources
from common.auth.links import ActionLinks, LinkMail
from common.models import ActionTokenPurpose
from tests.support.factories import register
from tests.support.mail_jobs import VERIFICATION, mailed_token_ids

VERIFY = "/api/v1/auth/verify-email"
RESEND = "/api/v1/auth/resend-verification"
VERIFY_EMAIL, RESET_PASSWORD = ActionTokenPurpose.VERIFY_EMAIL, ActionTokenPurpose.RESET_PASSWORD


async def _to_mail(
    resources: Resources, token_id: uuid.UUID, purpose: ActionTokenPurpose
) -> LinkMail | None:
    """As a mail job asks: in a unit of work of its own."""
    async with resources.unit_of_work() as uow:
        return await ActionLinks(uow, resources.settings).to_mail(token_id, purpose)


async def test_the_worker_mails_only_links_the_api_still_accepts(
    client: httpx.AsyncClient, test_resources: Resources, broker: Redis
) -> None:
    account = await register(client)
    (first,) = await mailed_token_ids(broker, VERIFICATION)
    link = await _to_mail(test_resources, first, VERIFY_EMAIL)
    assert link is not None
    assert link.address == account.email
    assert await _to_mail(test_resources, first, RESET_PASSWORD) is None

    # A newer link retires the first: neither side takes it any more.
    assert (await client.post(RESEND, json={"email": account.email})).status_code == 202
    first_again, newest = await mailed_token_ids(broker, VERIFICATION)
    assert first_again == first
    assert await _to_mail(test_resources, first, VERIFY_EMAIL) is None
    assert (await client.get(VERIFY, params={"token": link.token})).status_code == 400

    newest_link = await _to_mail(test_resources, newest, VERIFY_EMAIL)
    assert newest_link is not None
    assert (await client.get(VERIFY, params={"token": newest_link.token})).status_code == 200
    assert await _to_mail(test_resources, newest, VERIFY_EMAIL) is None  # used
