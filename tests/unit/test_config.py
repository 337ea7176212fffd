from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from common.config import DEV_JWT_SECRET, Environment, Settings

ROOT = Path(__file__).resolve().parents[2]


def test_env_example_lists_every_setting_and_nothing_else() -> None:
    text = (ROOT / ".env.example").read_text()
    listed = set(re.findall(r"^#? ?TASKPIPE_([A-Z0-9_]+)=", text, flags=re.MULTILINE))
    assert listed == {name.upper() for name in Settings.model_fields}


REAL_JWT = "kq3Vd9-0xLwT2mZr8YbN4cHf7uJs1pEa6gKi5oQy"
REAL_PASSWORD = "flower-9Qe2rT7yU4iO"


def _production(**overrides: object) -> Settings:
    values: dict[str, object] = {
        "env": "production",
        "jwt_secret": REAL_JWT,
        "flower_password": REAL_PASSWORD,
    }
    return Settings(**{**values, **overrides})


def test_the_environment_defaults_to_production(monkeypatch: pytest.MonkeyPatch) -> None:
    """A deployment that forgets TASKPIPE_ENV gets production's refusals, not development's
    published secrets (the tests and `make run` set their environment explicitly)."""
    monkeypatch.delenv("TASKPIPE_ENV")
    assert Settings.model_fields["env"].default == Environment.PRODUCTION
    with pytest.raises(ValidationError, match="TASKPIPE_ENV=production"):
        Settings(_env_file=None)  # type: ignore[call-arg]


def test_production_refuses_the_development_jwt_secret() -> None:
    with pytest.raises(ValidationError, match="TASKPIPE_JWT_SECRET is a development"):
        _production(jwt_secret=DEV_JWT_SECRET)


@pytest.mark.parametrize(
    "secret",
    [
        "REPLACE_ME",
        "replace-me-with-a-long-random-value-please",
        "change-me-to-at-least-32-random-characters",  # .env.example's
        "CHANGEME" * 5,
        "change_this_secret_before_going_live_ok",
    ],
)
def test_production_refuses_placeholder_jwt_secrets(secret: str) -> None:
    with pytest.raises(
        ValidationError, match="TASKPIPE_JWT_SECRET is a development or placeholder"
    ):
        _production(jwt_secret=secret)


def test_production_refuses_a_short_jwt_secret() -> None:
    with pytest.raises(ValidationError, match="at least 32"):
        _production(jwt_secret="k" * 31)


@pytest.mark.parametrize("password", ["taskpipe", "REPLACE_ME", "change-me", "short-but-real"])
def test_production_refuses_a_development_placeholder_or_short_flower_password(
    password: str,
) -> None:
    with pytest.raises(ValidationError, match="TASKPIPE_FLOWER_PASSWORD"):
        _production(flower_password=password)


def test_production_refuses_a_guessable_metrics_token_but_not_an_absent_one() -> None:
    with pytest.raises(ValidationError, match="TASKPIPE_METRICS_TOKEN"):
        _production(metrics_token="REPLACE_ME")
    with pytest.raises(ValidationError, match="TASKPIPE_METRICS_TOKEN must be at least 16"):
        _production(metrics_token="abc123")
    assert _production(metrics_token="").metrics_token is not None
    assert _production().metrics_token is None


def test_every_problem_is_named_at_once() -> None:
    with pytest.raises(ValidationError) as raised:
        _production(jwt_secret="REPLACE_ME", flower_password="REPLACE_ME")
    assert "TASKPIPE_JWT_SECRET" in str(raised.value)
    assert "TASKPIPE_FLOWER_PASSWORD" in str(raised.value)


def test_production_starts_with_real_secrets() -> None:
    settings = _production(metrics_token="m" * 8 + "-scrape-9Kd3")
    assert settings.is_production
    assert not settings.is_local
    assert settings.jwt_secret.get_secret_value() != DEV_JWT_SECRET


@pytest.mark.parametrize("env", ["development", "test"])
def test_development_and_test_accept_the_published_values(env: str) -> None:
    settings = Settings(env=env, jwt_secret=DEV_JWT_SECRET, flower_password="taskpipe")
    assert settings.is_local


def test_production_refuses_insecure_webhook_targets_which_only_development_allows() -> None:
    with pytest.raises(ValidationError, match="TASKPIPE_WEBHOOK_ALLOW_INSECURE"):
        _production(webhook_allow_insecure=True)
    assert not _production().webhooks_allow_insecure
    assert not _production(webhook_allow_insecure=False).webhooks_allow_insecure
    unset = {"webhook_allow_insecure": None}
    assert Settings(env="development", **unset).webhooks_allow_insecure
    assert not Settings(env="test", **unset).webhooks_allow_insecure
    assert Settings(env="test", webhook_allow_insecure=True).webhooks_allow_insecure


def test_the_security_store_defaults_to_the_main_redis() -> None:
    assert Settings(redis_url="redis://r:6379/3").security_store_url == "redis://r:6379/3"
    assert (
        Settings(redis_url="redis://r:6379/3", security_redis_url="redis://s:6379/0")
    ).security_store_url == "redis://s:6379/0"


def test_broker_defaults_to_redis() -> None:
    assert Settings(redis_url="redis://r:6379/3").celery_broker_url == "redis://r:6379/3"
    assert Settings(broker_url="redis://b:6379/1").celery_broker_url == "redis://b:6379/1"
