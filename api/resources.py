"""Process-wide resources of the API, built once in the lifespan and shared by requests."""

from __future__ import annotations

from dataclasses import dataclass

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from api.idempotency import IdempotencyStore
from common.accounts.personal_tokens import PersonalTokenVerifier
from common.auth.lockout import LoginLockout
from common.auth.revocation import TokenRevocations
from common.auth.tokens import AccessTokenVerifier
from common.cache import ResponseCache
from common.config import Settings
from common.cursors import Cursors
from common.db.session import (
    ReadConnection,
    autocommit_reads,
    create_engine,
    create_session_factory,
)
from common.db.uow import Subscribers, UnitOfWork
from common.jobs import JobPublisher, create_producer
from common.ratelimit import RateLimiter
from common.redis import create_redis
from common.security.passwords import PasswordHasher
from common.subscribers import change_subscribers


@dataclass
class Resources:
    settings: Settings
    engine: AsyncEngine
    session_factory: async_sessionmaker[AsyncSession]
    reads: ReadConnection
    redis: Redis
    broker: Redis
    """The Celery broker's Redis (the same client when the broker is the cache Redis); read
    for queue depths in /metrics."""
    security_redis: Redis
    hasher: PasswordHasher
    limiter: RateLimiter
    lockout: LoginLockout
    revocations: TokenRevocations
    access_tokens: AccessTokenVerifier
    personal_tokens: PersonalTokenVerifier
    publisher: JobPublisher
    cache: ResponseCache
    subscribers: Subscribers
    idempotency: IdempotencyStore
    cursors: Cursors

    @classmethod
    def create(cls, settings: Settings) -> Resources:
        engine = create_engine(settings, statement_timeout_ms=settings.db_statement_timeout_ms)
        redis = create_redis(settings)
        broker = (
            redis
            if settings.celery_broker_url == settings.redis_url
            else create_redis(settings, settings.celery_broker_url)
        )
        # Limits, lockouts and revocations: their own store when configured (noeviction).
        security = (
            redis
            if settings.security_store_url == settings.redis_url
            else create_redis(settings, settings.security_store_url)
        )
        cache = ResponseCache(
            redis,
            ttl_seconds=settings.cache_ttl_seconds,
            max_entry_bytes=settings.cache_max_entry_bytes,
        )
        return cls(
            settings=settings,
            engine=engine,
            session_factory=create_session_factory(engine),
            reads=autocommit_reads(engine),
            redis=redis,
            broker=broker,
            security_redis=security,
            hasher=PasswordHasher(
                settings.password_hash_memory_kib,
                settings.password_hash_iterations,
                settings.max_concurrent_hashes,
                settings.max_queued_hashes,
            ),
            limiter=RateLimiter(security, fail_open=settings.rate_limit_fail_open),
            lockout=LoginLockout(security, settings),
            revocations=revocations_for(security, settings),
            access_tokens=AccessTokenVerifier(settings),
            personal_tokens=PersonalTokenVerifier(cache_seconds=settings.pat_cache_seconds),
            publisher=JobPublisher(create_producer(settings)),
            cache=cache,
            subscribers=change_subscribers(cache),
            idempotency=IdempotencyStore(redis, ttl_seconds=settings.idempotency_ttl_seconds),
            cursors=Cursors(settings.jwt_secret.get_secret_value()),
        )

    def unit_of_work(self) -> UnitOfWork:
        """A new unit of work on its own session (`async with` ends it)."""
        return UnitOfWork(self.session_factory(), self.publisher, self.subscribers)

    async def close(self) -> None:
        self.hasher.shutdown()
        if self.broker is not self.redis:
            await self.broker.aclose()
        if self.security_redis is not self.redis:
            await self.security_redis.aclose()
        await self.redis.aclose()
        await self.engine.dispose()


def revocations_for(redis: Redis, settings: Settings) -> TokenRevocations:
    return TokenRevocations.from_settings(redis, settings)
