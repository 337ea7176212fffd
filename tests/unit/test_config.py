from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from common.config import DEV_JWT_SECRET, Settings

ROOT = Path(__file__).resolve().parents[2]


def test_env_example_lists_every_setting_and_nothing_else() -> None:
    text = (ROOT / ".env.example").read_text()
    listed = set(re.findall(r"^#? ?TASKPIPE_([A-Z0-9_]+)=", text, flags=re.MULTILINE))
    assert listed == {name.upper() for name in Settings.model_fields}


def test_production_refuses_the_development_jwt_secret() -> None:
    with pytest.raises(ValidationError, match="JWT_SECRET"):
        Settings(env="production", flower_password="a-real-password")


def test_production_refuses_a_short_jwt_secret() -> None:
    with pytest.raises(ValidationError, match="at least 32"):
        Settings(env="production", jwt_secret="short", flower_password="a-real-password")


def test_production_refuses_the_development_flower_password() -> None:
    with pytest.raises(ValidationError, match="FLOWER_PASSWORD"):
        Settings(env="production", jwt_secret="x" * 40)


def test_production_starts_with_real_secrets() -> None:
    settings = Settings(env="production", jwt_secret="x" * 40, flower_password="a-real-password")
    assert settings.is_production
    assert settings.jwt_secret.get_secret_value() != DEV_JWT_SECRET


def test_broker_defaults_to_redis() -> None:
    assert Settings(redis_url="redis://r:6379/3").celery_broker_url == "redis://r:6379/3"
    assert Settings(broker_url="redis://b:6379/1").celery_broker_url == "redis://b:6379/1"
