from __future__ import annotations

import base64
import json
import uuid

import httpx
import pytest
from redis.asyncio import Redis
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from common.models import OutboxJob, User
from tests.support.factories import PASSWORD, register, unique_email

REGISTER = "/api/v1/auth/register"


def _body(**overrides: object) -> dict[str, object]:
    body: dict[str, object] = {
        "email": unique_email(),
        "password": PASSWORD,
        "full_name": "Ada Lovelace",
    }
    body.update(overrides)
    return body


async def test_register_returns_tokens_and_an_inactive_user(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    response = await client.post(REGISTER, json=_body(email="Ada.Mixed@Example.COM"))
    assert response.status_code == 201
    body = response.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 3600
    assert body["access_token"] and body["refresh_token"]
    user = body["user"]
    assert user["email"] == "ada.mixed@example.com"
    assert user["full_name"] == "Ada Lovelace"
    assert user["is_active"] is False
    assert user["email_verified_at"] is None
    uuid.UUID(user["id"])
    assert "password" not in response.text and "password_hash" not in response.text

    stored = (
        await session.execute(select(User).where(User.id == uuid.UUID(user["id"])))
    ).scalar_one()
    assert stored.password_hash.startswith("$argon2id$v=19$m=1024,t=1,p=1$")  # the test cost


async def test_register_enqueues_one_verification_mail_job(
    client: httpx.AsyncClient, session: AsyncSession, broker: Redis
) -> None:
    account = await register(client)
    (message,) = [json.loads(raw) for raw in await broker.lrange("email", 0, -1)]
    assert message["headers"]["task"] == "taskpipe.email.send_verification"
    args, kwargs, _ = json.loads(base64.b64decode(message["body"]))
    # Ids only: no address, token or secret travels through the broker (or shows in Flower).
    assert args == []
    assert list(kwargs) == ["token_id"]
    assert account.email not in json.dumps(message)
    # The job reached the broker after the commit; its outbox row stays until the worker has
    # finished it, due for the relay only if the job is still unfinished much later.
    (row,) = (await session.execute(select(OutboxJob))).scalars().all()
    assert (row.id, row.publish_count) == (uuid.UUID(message["headers"]["id"]), 1)
    assert (row.due_at - row.created_at).total_seconds() == pytest.approx(600, abs=5)


async def test_register_duplicate_email_is_409_case_insensitively(
    client: httpx.AsyncClient,
) -> None:
    email = unique_email()
    await register(client, email=email)
    response = await client.post(REGISTER, json=_body(email=email.upper()))
    assert response.status_code == 409
    problem = response.json()
    assert problem["type"] == "urn:taskpipe:problem:email-already-registered"
    assert problem["status"] == 409
    assert response.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"email": "not-an-email"}, "email"),
        ({"email": "a@b"}, "email"),
        ({"email": 42}, "email"),
        ({"email": "x" * 400 + "@example.com"}, "email"),
        ({"full_name": ""}, "full_name"),
        ({"full_name": "   "}, "full_name"),
        ({"full_name": "x" * 101}, "full_name"),
        ({"full_name": None}, "full_name"),
        ({"password": "short-1A"}, "password"),
        ({"password": "alllowercaseletters"}, "password"),
        ({"password": "lowercase-and-symbols"}, "password"),
        ({"password": 1234567890}, "password"),
        ({"password": "Aa1-" + "x" * 69}, "password"),  # 73 bytes: bcrypt would truncate
        ({"password": "Aa1-" + "é" * 35}, "password"),  # 39 characters but 74 bytes
        ({"password": "x" * 5000}, "password"),  # over the schema limit, under the body limit
    ],
)
async def test_register_rejects_bad_input_with_field_errors(
    client: httpx.AsyncClient, overrides: dict[str, object], field: str
) -> None:
    response = await client.post(REGISTER, json=_body(**overrides))
    assert response.status_code == 400, response.text
    problem = response.json()
    assert problem["type"] == "urn:taskpipe:problem:validation-error"
    assert field in {error["field"] for error in problem["errors"]}


async def test_register_says_why_a_long_password_is_refused(client: httpx.AsyncClient) -> None:
    response = await client.post(REGISTER, json=_body(password="Aa1-" + "x" * 69))
    assert response.status_code == 400
    assert "72 bytes" in response.json()["errors"][0]["msg"]


@pytest.mark.parametrize("missing", ["email", "password", "full_name"])
async def test_register_requires_every_field(client: httpx.AsyncClient, missing: str) -> None:
    body = _body()
    del body[missing]
    response = await client.post(REGISTER, json=body)
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == missing


@pytest.mark.parametrize(
    "extra", [{"is_active": True}, {"id": str(uuid.uuid4())}, {"role": "admin"}]
)
async def test_register_rejects_unknown_fields(
    client: httpx.AsyncClient, extra: dict[str, object]
) -> None:
    response = await client.post(REGISTER, json=_body(**extra))
    assert response.status_code == 400
    (error,) = response.json()["errors"]
    assert error["msg"] == "Unknown field"
    assert error["field"] == next(iter(extra))


async def test_register_treats_sql_looking_input_as_data(client: httpx.AsyncClient) -> None:
    name = "Robert'); DROP TABLE users;--"
    account = await register(client, full_name=name)
    assert account.user["full_name"] == name
    again = await register(client)
    assert again.user["id"] != account.user["id"]


@pytest.mark.parametrize(
    ("content", "content_type"),
    [(b"{not json", "application/json"), (b"", "application/json"), (b"[]", "application/json")],
)
async def test_register_with_a_malformed_body_is_400(
    client: httpx.AsyncClient, content: bytes, content_type: str
) -> None:
    response = await client.post(REGISTER, content=content, headers={"Content-Type": content_type})
    assert response.status_code == 400
    assert response.json()["type"] == "urn:taskpipe:problem:validation-error"


async def test_a_body_over_one_mebibyte_is_413(client: httpx.AsyncClient) -> None:
    response = await client.post(REGISTER, json=_body(full_name="x" * 2_000_000))
    assert response.status_code == 413
    assert response.json()["type"] == "urn:taskpipe:problem:payload-too-large"


async def test_register_is_rate_limited_per_ip(client: httpx.AsyncClient, configure) -> None:  # type: ignore[no-untyped-def]
    configure(register_rate_limit=2)
    for _ in range(2):
        assert (await client.post(REGISTER, json=_body())).status_code == 201
    response = await client.post(REGISTER, json=_body())
    assert response.status_code == 429
    assert int(response.headers["Retry-After"]) >= 1
    assert response.headers["RateLimit-Limit"] == "2"
    assert response.headers["RateLimit-Remaining"] == "0"
