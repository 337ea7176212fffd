"""Passwords are Argon2id; accounts hashed with bcrypt before still sign in, and their first
sign-in replaces the hash, as does a change of the configured cost."""

from __future__ import annotations

import contextlib
import dataclasses
import uuid
from collections.abc import Iterator

import bcrypt
import httpx
from fastapi import FastAPI
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from api.resources import Resources
from common.models import User
from common.security.passwords import PasswordHasher
from common.users.repository import UserRepository
from tests.support.factories import PASSWORD, login, register

TEST_COST = "$argon2id$v=19$m=1024,t=1,p=1$"


async def _stored_hash(session: AsyncSession, email: str) -> str:
    session.expire_all()
    return (
        await session.execute(select(User.password_hash).where(User.email == email))
    ).scalar_one()


@contextlib.contextmanager
def _hashing_at(
    app: FastAPI, resources: Resources, *, memory_kib: int, iterations: int
) -> Iterator[None]:
    """The app hashes at other costs for the duration (as after a change of the settings)."""
    hasher = PasswordHasher(memory_kib, iterations, max_concurrent=1)
    app.state.resources = dataclasses.replace(resources, hasher=hasher)
    try:
        yield
    finally:
        hasher.shutdown()
        app.state.resources = resources


async def _give_a_bcrypt_hash(session: AsyncSession, email: str) -> str:
    legacy = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(4)).decode()
    await session.execute(update(User).where(User.email == email).values(password_hash=legacy))
    await session.commit()
    return legacy


async def test_a_bcrypt_account_signs_in_and_its_hash_becomes_argon2id(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    account = await register(client)
    await _give_a_bcrypt_hash(session, account.email)

    assert (await login(client, account.email)).status_code == 200
    replaced = await _stored_hash(session, account.email)
    assert replaced.startswith(TEST_COST)
    assert (await login(client, account.email)).status_code == 200
    assert await _stored_hash(session, account.email) == replaced  # current: left alone
    assert (await login(client, account.email, "Wrong-Guess-1")).status_code == 401


async def test_a_wrong_password_leaves_a_bcrypt_hash_as_it_was(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    account = await register(client)
    legacy = await _give_a_bcrypt_hash(session, account.email)
    assert (await login(client, account.email, "Wrong-Guess-1")).status_code == 401
    assert (await login(client, account.email, PASSWORD + "x")).status_code == 401
    assert await _stored_hash(session, account.email) == legacy


async def test_a_higher_configured_cost_rehashes_at_the_next_sign_in(
    app: FastAPI, client: httpx.AsyncClient, session: AsyncSession, test_resources: Resources
) -> None:
    account = await register(client)
    assert (await _stored_hash(session, account.email)).startswith(TEST_COST)
    with _hashing_at(app, test_resources, memory_kib=2048, iterations=2):
        assert (await login(client, account.email)).status_code == 200
    assert (await _stored_hash(session, account.email)).startswith("$argon2id$v=19$m=2048,t=2,p=1$")
    assert (await login(client, account.email)).status_code == 200  # the old cost verifies too


async def test_a_malformed_stored_hash_fails_the_sign_in_without_an_error(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    account = await register(client)
    for broken in ("$argon2id$v=19$m=1024,t=1,p=1$garbage", "$2b$04$garbage", "plain text"):
        await session.execute(
            update(User).where(User.email == account.email).values(password_hash=broken)
        )
        await session.commit()
        response = await login(client, account.email)
        assert response.status_code == 401, broken
        assert response.json()["type"] == "urn:taskpipe:problem:invalid-credentials"


async def test_a_lower_configured_cost_leaves_stronger_hashes_alone(
    app: FastAPI, client: httpx.AsyncClient, session: AsyncSession, test_resources: Resources
) -> None:
    """A mistyped lower setting weakens only the hashes made under it."""
    account = await register(client)
    stored = await _stored_hash(session, account.email)
    with _hashing_at(app, test_resources, memory_kib=512, iterations=1):
        assert (await login(client, account.email)).status_code == 200
    assert await _stored_hash(session, account.email) == stored


async def test_an_upgrade_never_overwrites_a_hash_changed_meanwhile(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    """A sign-in that verified the old bcrypt hash while a password reset committed must not
    bring the old password back: the upgrade applies only to the hash it verified."""
    account = await register(client)
    legacy = await _give_a_bcrypt_hash(session, account.email)
    user_id = uuid.UUID(account.user["id"])
    users = UserRepository(session)
    assert await users.replace_password_hash(user_id, "$2b$04$a-hash-reset-since", "new") is False
    assert await _stored_hash(session, account.email) == legacy
    assert await users.replace_password_hash(user_id, legacy, "upgraded") is True
    assert await _stored_hash(session, account.email) == "upgraded"
