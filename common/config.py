"""Settings for every Taskpipe process, read from `TASKPIPE_*` environment variables and `.env`."""

from __future__ import annotations

from enum import StrEnum
from functools import lru_cache
from typing import Annotated

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_JWT_SECRET = "dev-only-insecure-jwt-secret-change-me-0123456789"
DEV_FLOWER_PASSWORD = "taskpipe"

PositiveInt = Annotated[int, Field(gt=0)]


class Environment(StrEnum):
    DEVELOPMENT = "development"
    TEST = "test"
    PRODUCTION = "production"


class Settings(BaseSettings):
    """All knobs in one place; defaults suit `make run` on a laptop, never production secrets."""

    model_config = SettingsConfigDict(
        env_prefix="TASKPIPE_", env_file=".env", extra="ignore", frozen=True
    )

    env: Environment = Environment.DEVELOPMENT
    log_level: str = "INFO"
    log_json: bool | None = None
    """JSON log lines (true), readable console lines (false); unset: console lines when stdout is
    a terminal, JSON otherwise (pipes, files, containers, log collectors)."""

    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:5432/taskpipe"
    db_pool_size: PositiveInt = 10
    db_max_overflow: int = Field(default=10, ge=0)
    db_pool_pre_ping: bool = False
    """Ping every pooled connection before use: one more round trip on every request. Off by
    default: a connection PostgreSQL dropped fails one request with a 503 and SQLAlchemy
    then replaces every pooled connection of that age (the whole pool) at once."""
    redis_url: str = "redis://127.0.0.1:6379/0"
    broker_url: str | None = None

    smtp_host: str = "127.0.0.1"
    smtp_port: PositiveInt = 1025
    smtp_user: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = False
    smtp_timeout_seconds: PositiveInt = 10
    mail_from: str = "Taskpipe <no-reply@taskpipe.local>"
    public_url: str = "http://127.0.0.1:8000"

    jwt_secret: SecretStr = SecretStr(DEV_JWT_SECRET)
    jwt_issuer: str = "taskpipe"
    access_token_ttl: PositiveInt = 3600
    refresh_token_ttl: PositiveInt = 30 * 24 * 3600
    email_token_ttl: PositiveInt = 24 * 3600
    password_reset_token_ttl: PositiveInt = 3600
    bcrypt_rounds: int = Field(default=12, ge=4, le=16)
    max_concurrent_hashes: PositiveInt = 2
    """Per API process (one per core in production): bcrypt threads, which run at a lower OS
    priority than requests; more would only queue for the same cores."""

    login_max_failures: PositiveInt = 5
    login_failure_window_seconds: PositiveInt = 15 * 60
    lockout_seconds: PositiveInt = 15 * 60
    login_rate_limit: PositiveInt = 20
    login_rate_window_seconds: PositiveInt = 60
    email_rate_limit: PositiveInt = 3
    email_rate_window_seconds: PositiveInt = 15 * 60
    register_rate_limit: PositiveInt = 10
    register_rate_window_seconds: PositiveInt = 60 * 60
    rate_limit_fail_open: bool = True

    cache_ttl_seconds: PositiveInt = 300
    idempotency_ttl_seconds: PositiveInt = 24 * 3600

    purge_retention_days: PositiveInt = 30
    purge_batch_size: PositiveInt = 1000

    broker_visibility_timeout: PositiveInt = 300
    """Seconds before the broker hands an unacknowledged job out again: the longest a job of
    a worker killed outright (OOM, lost node) waits. Must exceed a job's hard time limit plus
    the longest countdown Celery holds (`worker.policy`)."""
    outbox_redeliver_seconds: PositiveInt = 600
    """An outbox row still there this long after it was published is published again (its
    message was lost, e.g. by a Redis restart); duplicates are absorbed by the jobs' keys."""
    mail_retry_backoff_seconds: PositiveInt = 5
    heartbeat_dir: str = "/tmp"  # noqa: S108
    worker_concurrency: PositiveInt = 2
    flower_address: str = "127.0.0.1"
    flower_port: PositiveInt = 5555
    flower_user: str = "admin"
    flower_password: SecretStr = SecretStr(DEV_FLOWER_PASSWORD)

    @property
    def celery_broker_url(self) -> str:
        return self.broker_url or self.redis_url

    @property
    def is_production(self) -> bool:
        return self.env is Environment.PRODUCTION

    @model_validator(mode="after")
    def _refuse_development_secrets_in_production(self) -> Settings:
        if self.is_production:
            if self.jwt_secret.get_secret_value() == DEV_JWT_SECRET:
                raise ValueError("TASKPIPE_JWT_SECRET must be set to a real secret in production")
            if len(self.jwt_secret.get_secret_value()) < 32:
                raise ValueError("TASKPIPE_JWT_SECRET must be at least 32 characters in production")
            if self.flower_password.get_secret_value() == DEV_FLOWER_PASSWORD:
                raise ValueError("TASKPIPE_FLOWER_PASSWORD must be set in production")
        return self


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings; tests clear this cache after changing the environment."""
    return Settings()
