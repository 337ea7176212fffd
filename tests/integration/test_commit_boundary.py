"""The commit happens before the response: a commit that fails never answers 2xx."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select, text

from api.resources import Resources
from common.models import User
from tests.support.factories import PASSWORD


@pytest.fixture
async def commit_fails_for_doomed_names(resources: Resources) -> AsyncIterator[None]:
    """A deferred constraint trigger: it only fires at COMMIT, after every flush succeeded."""
    async with resources.engine.begin() as connection:
        await connection.execute(
            text(
                "CREATE FUNCTION refuse_doomed() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                "IF NEW.full_name = 'Doomed' THEN RAISE EXCEPTION 'commit refused'; END IF; "
                "RETURN NEW; END $$"
            )
        )
        await connection.execute(
            text(
                "CREATE CONSTRAINT TRIGGER refuse_doomed AFTER INSERT ON users "
                "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION refuse_doomed()"
            )
        )
    yield
    async with resources.engine.begin() as connection:
        await connection.execute(text("DROP TRIGGER refuse_doomed ON users"))
        await connection.execute(text("DROP FUNCTION refuse_doomed()"))


async def test_a_failing_commit_is_a_500_problem_and_nothing_is_kept(
    app: FastAPI,
    resources: Resources,
    committed_data: None,
    commit_fails_for_doomed_names: None,
) -> None:
    app.state.resources = resources
    # The request middleware answers and logs it (raise_app_exceptions would not matter).
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        response = await client.post(
            "/api/v1/auth/register",
            json={"email": "doomed@example.com", "password": PASSWORD, "full_name": "Doomed"},
        )
    app.state.resources = None
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert "commit refused" not in response.text  # no internals leak
    # Like every other answer (it used to be sent past the middleware that adds them):
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.json()["request_id"] == response.headers["X-Request-ID"]
    async with resources.session_factory() as session:
        assert (await session.execute(select(func.count(User.id)))).scalar_one() == 0
