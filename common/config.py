"""Settings for every Taskpipe process, read from `TASKPIPE_*` environment variables and `.env`."""

from __future__ import annotations

from enum import StrEnum
from functools import lru_cache
from typing import Annotated

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_JWT_SECRET = "dev-only-insecure-jwt-secret-change-me-0123456789"
DEV_FLOWER_PASSWORD = "taskpipe"
MIN_JWT_SECRET_LENGTH = 32
"""An HS256 key can be brute-forced offline from any token it signed: it must be long."""
MIN_ONLINE_SECRET_LENGTH = 16
"""The Flower password and the metrics token can only be guessed online, one request a try."""
_PLACEHOLDERS = ("replaceme", "changeme", "changethis", "yoursecret", "secrethere")
"""What templates and tutorials put where a secret belongs (compared without punctuation)."""

PositiveInt = Annotated[int, Field(gt=0)]


class Environment(StrEnum):
    DEVELOPMENT = "development"
    TEST = "test"
    PRODUCTION = "production"


class Settings(BaseSettings):
    """All knobs in one place. Defaults are safe for production except the secrets, which
    production must set; `make run` and the tests choose their environment explicitly."""

    model_config = SettingsConfigDict(
        env_prefix="TASKPIPE_", env_file=".env", extra="ignore", frozen=True
    )

    env: Environment = Environment.PRODUCTION
    """Production unless told otherwise: a deployment that forgets this variable must not run
    with development secrets, open docs or open metrics (`make run` sets development)."""
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
    db_statement_timeout_ms: int = Field(default=5000, ge=0)
    """API connections only (0: none): a statement running longer is cancelled and the request
    answers 503, so no request holds a connection and a worker slot indefinitely."""
    redis_url: str = "redis://127.0.0.1:6379/0"
    security_redis_url: str | None = None
    """Rate limits, lockouts and revocations (default: `redis_url`). Deploy it as its own
    database or instance with `maxmemory-policy noeviction`: evicting a lock or a revocation
    would silently lift it."""
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
    password_hash_memory_kib: int = Field(default=19_456, ge=8, le=1_048_576)
    """Argon2id's memory per password hash (KiB); the default is OWASP's recommended minimum
    (19 MiB), with `password_hash_iterations` 2 and one lane. Raising either replaces each
    stored hash at its owner's next sign-in."""
    password_hash_iterations: int = Field(default=2, ge=1, le=20)
    max_concurrent_hashes: PositiveInt = 2
    """Per API process (one per core in production): hashing threads, which run at a lower OS
    priority than requests; more would only queue for the same cores (and each holds
    `password_hash_memory_kib` while it hashes)."""
    max_queued_hashes: int = Field(default=32, ge=0)
    """Hashes that may wait for a thread (per process); past that a login or registration
    answers 503 with Retry-After instead of queueing for seconds."""
    session_max_days: PositiveInt = 90
    """A session (one login) ends this long after it began, however often it is refreshed."""

    login_max_failures: int = Field(default=5, gt=0, le=1000)
    """Failures from one client network (IPv4 /24, IPv6 /64) that lock the account for that
    network only, so a stranger elsewhere cannot lock its owner out."""
    login_max_account_failures: int = Field(default=20, gt=0, le=10_000)
    """Failures from all networks together that lock the account everywhere (distributed
    guessing) but for the networks it signed in from lately; a password reset lifts it."""
    login_known_network_days: PositiveInt = 30
    """A network with a successful sign-in this recently is spared the account-wide lock."""
    login_failure_window_seconds: PositiveInt = 15 * 60
    lockout_seconds: PositiveInt = 15 * 60
    login_rate_limit: PositiveInt = 20
    login_rate_window_seconds: PositiveInt = 60
    email_rate_limit: PositiveInt = 3
    email_rate_window_seconds: PositiveInt = 15 * 60
    register_rate_limit: PositiveInt = 10
    register_rate_window_seconds: PositiveInt = 60 * 60
    rate_limit_fail_open: bool = True
    """When the security Redis is down: let limited requests through (true) or answer 503.
    Login and the lockout always fail closed."""
    user_rate_limit: PositiveInt = 600
    user_rate_limit_window_seconds: PositiveInt = 60
    """Per user, on every authenticated route. The load test's busiest user (an action every
    1-5 s, a request or two each) makes 20-120 requests a minute: 600 is 5x the worst."""
    batch_rate_limit: PositiveInt = 60
    batch_rate_window_seconds: PositiveInt = 60
    """Per user, for the batch routes (each up to 100 tasks), besides the per-user limit: a
    batch counts once there, but writes up to a hundred tasks."""
    refresh_rate_limit: PositiveInt = 30
    refresh_rate_window_seconds: PositiveInt = 600
    """Per session: a client refreshes about once an access-token lifetime."""
    digests_per_user_per_hour: PositiveInt = 4
    mails_per_address_per_day: PositiveInt = 50
    """Every kind of mail to one address per UTC day (verification, reset, reminders)."""
    link_mails_per_address_per_day: PositiveInt = 10
    """Of those, verification and reset links: anyone who knows an address can ask for them,
    so they cannot spend the allowance its owner's reminders need."""

    personal_tokens_per_user: PositiveInt = 50
    pat_cache_seconds: int = Field(default=30, ge=0, le=300)
    """How long an API process remembers a verified personal access token (a lookup per token
    per interval instead of per request); a revocation still stops it at once (Redis mark)."""
    account_deletion_grace_days: int = Field(default=7, ge=0, le=365)
    """Days between `DELETE /users/me` and the erasure, during which the mailed link restores
    the account; 0 erases at once."""
    exports_per_user_per_day: PositiveInt = 3
    export_max_bytes: PositiveInt = 64 * 1024 * 1024
    """The largest archive an export may store (zip, in PostgreSQL); a larger one fails."""
    export_link_ttl: PositiveInt = 24 * 3600
    """How long a ready export can be downloaded before the purge deletes it."""
    activity_retention_days: PositiveInt = 90

    cache_ttl_seconds: PositiveInt = 300
    cache_max_entry_bytes: PositiveInt = 256 * 1024
    """Larger answers are served but not cached: one tenant's pages cannot fill the cache."""
    idempotency_ttl_seconds: PositiveInt = 24 * 3600

    purge_retention_days: PositiveInt = 30
    purge_batch_size: PositiveInt = 1000

    broker_visibility_timeout: PositiveInt = 285
    """Seconds before the broker hands an unacknowledged job out again: a job of a worker
    killed outright (OOM, lost node) waits this plus one 10 s sweep, under five minutes. Must
    exceed a job's hard time limit plus
    the longest countdown Celery holds (`worker.policy`)."""
    outbox_redeliver_seconds: PositiveInt = 600
    """An outbox row still there this long after it was published is published again (its
    message was lost, e.g. by a Redis restart); duplicates are absorbed by the jobs' keys."""
    mail_retry_backoff_seconds: Annotated[float, Field(gt=0)] = 5
    """The first SMTP retry's delay (a fraction of a second in tests)."""
    heartbeat_dir: str = "/tmp"  # noqa: S108
    worker_concurrency: PositiveInt = 2
    flower_address: str = "127.0.0.1"
    flower_port: PositiveInt = 5555
    flower_user: str = "admin"
    flower_password: SecretStr = SecretStr(DEV_FLOWER_PASSWORD)

    webhook_allow_insecure: bool | None = None
    """Webhook URLs may be http and loopback (tests, `make run`); private, link-local and
    metadata addresses stay refused. Unset: on in development only. Refused in production."""
    webhooks_per_user: PositiveInt = 10
    webhook_rate_limit: PositiveInt = 30
    webhook_rate_window_seconds: PositiveInt = 3600
    """Creates, changes, tests and redeliveries of webhooks per user: each resolves a user's
    host name or makes the worker call it."""

    public_docs: bool = False
    """Serve /docs, /redoc and /openapi.json in production (always on in development/test)."""
    metrics_token: SecretStr | None = None
    """/metrics answers only with `Authorization: Bearer <token>`; without a token it is 404
    in production and open in development/test."""

    @property
    def celery_broker_url(self) -> str:
        return self.broker_url or self.redis_url

    @property
    def security_store_url(self) -> str:
        return self.security_redis_url or self.redis_url

    @property
    def is_production(self) -> bool:
        return self.env is Environment.PRODUCTION

    @property
    def is_local(self) -> bool:
        """Development or test: published secrets, open docs and open metrics are fine."""
        return self.env in (Environment.DEVELOPMENT, Environment.TEST)

    @property
    def webhooks_allow_insecure(self) -> bool:
        if self.webhook_allow_insecure is None:
            return self.env is Environment.DEVELOPMENT
        return self.webhook_allow_insecure

    @model_validator(mode="after")
    def _refuse_insecure_webhooks_in_production(self) -> Settings:
        if self.is_production and self.webhook_allow_insecure:
            raise ValueError(
                "TASKPIPE_WEBHOOK_ALLOW_INSECURE=true lets users point webhooks at this host's "
                "own services over plain http: it is for tests and `make run`, not production"
            )
        return self

    @model_validator(mode="after")
    def _refuse_weak_secrets_outside_development(self) -> Settings:
        if self.is_local:
            return self
        checks = [
            ("TASKPIPE_JWT_SECRET", self.jwt_secret, DEV_JWT_SECRET, MIN_JWT_SECRET_LENGTH),
            (
                "TASKPIPE_FLOWER_PASSWORD",
                self.flower_password,
                DEV_FLOWER_PASSWORD,
                MIN_ONLINE_SECRET_LENGTH,
            ),
        ]
        if self.metrics_token is not None and self.metrics_token.get_secret_value():
            # Optional (without one /metrics is closed), but never a guessable one.
            checks.append(
                ("TASKPIPE_METRICS_TOKEN", self.metrics_token, "", MIN_ONLINE_SECRET_LENGTH)
            )
        problems = [problem for problem in (_weak_secret(*check) for check in checks) if problem]
        if problems:
            raise ValueError(
                "; ".join(problems) + f" (TASKPIPE_ENV={self.env.value}; for local use set"
                " TASKPIPE_ENV=development)"
            )
        return self


def _weak_secret(name: str, secret: SecretStr, development_value: str, min_length: int) -> str:
    """Why `secret` must not guard a deployment, or an empty string."""
    value = secret.get_secret_value()
    folded = "".join(character for character in value.lower() if character.isalnum())
    if value == development_value or any(word in folded for word in _PLACEHOLDERS):
        return f"{name} is a development or placeholder value: set a real secret"
    if len(value) < min_length:
        return f"{name} must be at least {min_length} characters"
    return ""


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings; tests clear this cache after changing the environment."""
    return Settings()
