"""Registration, login, token rotation, email verification and password reset.

Like every service it flushes, and registers what must follow the commit; the request's unit
of work commits. It ends a transaction early only with `release_connection()`, before a
password hash.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from common.auth.activity import ActivityLog
from common.auth.attempts import begin_attempt
from common.auth.errors import InvalidCredentials, RefreshTokenReused
from common.auth.links import ActionLinks
from common.auth.lockout import LoginLockout
from common.auth.repository import AuthRepository
from common.auth.revocation import TokenRevocations
from common.auth.sessions import CredentialRevoker
from common.auth.tokens import TokenClaims, TokenType, decode_token, hash_token, issue_token
from common.config import Settings
from common.db.uow import UnitOfWork
from common.errors import Unauthorized
from common.jobs import JobName, Queue
from common.logging import get_logger
from common.models import (
    ActionTokenPurpose,
    ActivityKind,
    RefreshToken,
    RefreshTokenFamily,
    User,
)
from common.ratelimit import RateLimiter
from common.security.network import Client
from common.security.passwords import PasswordHasher
from common.users.repository import UserRepository
from common.users.service import UserService

log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int
    token_type: str = "bearer"


@dataclass(frozen=True, slots=True)
class Registration:
    user: User
    tokens: TokenPair


class AuthService:
    def __init__(
        self,
        uow: UnitOfWork,
        settings: Settings,
        hasher: PasswordHasher,
        limiter: RateLimiter,
        lockout: LoginLockout,
        revocations: TokenRevocations,
    ) -> None:
        self._uow = uow
        self._settings = settings
        self._hasher = hasher
        self._limiter = limiter
        self._lockout = lockout
        self._revocations = revocations
        self._users = UserRepository(uow.session)
        self._tokens = AuthRepository(uow.session)
        self._links = ActionLinks(uow, settings)
        self._activity = ActivityLog(uow.session)
        self._revoker = CredentialRevoker(uow, revocations)

    async def register(
        self, *, email: str, password: str, full_name: str, client: Client
    ) -> Registration:
        await self._enforce_limit(
            "register",
            client.ip,
            self._settings.register_rate_limit,
            self._settings.register_rate_window_seconds,
        )
        password_hash = await self._hasher.hash(password)
        user = await UserService(self._uow).create(
            email=email, full_name=full_name, password_hash=password_hash
        )
        await self._links.issue(user, ActionTokenPurpose.VERIFY_EMAIL)
        tokens = await self._start_session(user.id, client)
        await self._uow.session.refresh(user)
        log.info("user_registered", user_id=str(user.id))
        return Registration(user=user, tokens=tokens)

    async def login(self, *, email: str, password: str, client: Client) -> tuple[User, TokenPair]:
        """An account awaiting deletion answers exactly like an unknown address."""
        email = email.lower()
        # Both limits guard password guessing, so they fail closed (503) without their store.
        await self._enforce_limit(
            "login",
            client.ip,
            self._settings.login_rate_limit,
            self._settings.login_rate_window_seconds,
            fail_open=False,
        )
        attempt = await begin_attempt(self._lockout, self._uow.session, email, client)
        try:
            user = await self._users.get_by_email(email)
            if user is not None and user.deletion_pending:
                user = None
            # Release the connection before the slow hash: a login burst must not drain the pool.
            await self._uow.release_connection()
            verified = await self._hasher.verify(password, user.password_hash if user else None)
        except Exception:  # too busy to hash, or the database failed: no password was checked
            await self._lockout.withdraw(attempt)
            raise
        if not verified:
            log.info("login_failed", reason="bad_credentials")
            if user is not None:
                self._activity.record(user.id, ActivityKind.LOGIN_FAILED, client)
            raise InvalidCredentials("Invalid email or password")
        assert user is not None
        await self._lockout.succeeded(attempt)
        if self._hasher.needs_rehash(user.password_hash):  # bcrypt, or a lower Argon2 cost
            upgraded = await self._hasher.hash(password)
            await self._users.replace_password_hash(user.id, user.password_hash, upgraded)
        user.last_seen_at = datetime.now(UTC)
        self._activity.record(user.id, ActivityKind.LOGIN, client)
        tokens = await self._start_session(user.id, client)
        # The client's next move is almost always the task list: have it ready.
        self._uow.enqueue(JobName.WARM_USER_CACHE, Queue.CACHE, user_id=str(user.id))
        log.info("login_succeeded", user_id=str(user.id))
        return user, tokens

    async def refresh(self, refresh_token: str, client: Client) -> TokenPair:
        """Rotate: the presented token is retired; presenting a retired one revokes the family.
        Limited per session (each refresh writes a row), and a session ends
        `session_max_days` after its login however often it is refreshed."""
        claims = decode_token(self._settings, refresh_token, "refresh")
        if claims.family_id is None:
            raise Unauthorized("Invalid refresh token")
        await self._enforce_limit(
            "refresh",
            str(claims.family_id),
            self._settings.refresh_rate_limit,
            self._settings.refresh_rate_window_seconds,
        )
        found = await self._tokens.get_refresh_token_for_update(claims.token_id)
        now = datetime.now(UTC)
        if found is None or found[0].token_hash != hash_token(refresh_token):
            raise Unauthorized("Invalid refresh token")
        token, family = found
        if family.revoked_at is not None:
            raise Unauthorized("This session has ended; log in again")
        if token.used_at is not None:
            await self._end_session(family.user_id, family.id, "reuse", client)
            log.warning(
                "refresh_token_reuse", user_id=str(family.user_id), family_id=str(family.id)
            )
            raise RefreshTokenReused()
        if token.expires_at <= now:
            raise Unauthorized("Refresh token has expired")
        session_ends = family.created_at + timedelta(days=self._settings.session_max_days)
        if session_ends <= now:
            raise Unauthorized("This session has reached its maximum age; log in again")
        token.used_at = now
        family.last_used_at = now
        return self._issue_pair(family.user_id, family.id, not_after=session_ends)

    async def logout(self, refresh_token: str, client: Client) -> None:
        """End the session the refresh token belongs to; repeating it is harmless."""
        claims = decode_token(self._settings, refresh_token, "refresh")
        found = await self._tokens.get_refresh_token_for_update(claims.token_id)
        if found is None or found[0].token_hash != hash_token(refresh_token):
            raise Unauthorized("Invalid refresh token")
        await self._end_session(found[1].user_id, found[1].id, "logout", client)

    async def logout_session(
        self, user_id: uuid.UUID, session_id: uuid.UUID, client: Client
    ) -> None:
        """End the session a verified access token belongs to (a client that kept no refresh
        token can still sign out); repeating it is harmless."""
        await self._end_session(user_id, session_id, "logout", client)

    async def _end_session(
        self, user_id: uuid.UUID, family_id: uuid.UUID, reason: str, client: Client
    ) -> None:
        """Once the revocation committed, the session's access tokens stop working at once."""
        if await self._tokens.revoke_family(family_id, reason, datetime.now(UTC)):
            self._activity.record(
                user_id,
                ActivityKind.SESSION_ENDED,
                client,
                session_id=str(family_id),
                reason=reason,
            )
        self._revoker.stop(user_id, [family_id])

    async def verify_email(self, token: str, *, client: Client) -> User:
        await self._limit_token_guesses(client.ip)
        action = await self._links.spend(token, ActionTokenPurpose.VERIFY_EMAIL)
        user = await self._users.get(action.user_id, for_update=True)
        assert user is not None  # tokens cascade with their user
        if user.email_verified_at is None:
            user.email_verified_at = action.used_at
        log.info("email_verified", user_id=str(user.id))
        return user

    async def limit_mail_requests(self, client: Client) -> None:
        """The per-IP limit of resend-verification and forgot-password (a visible 429)."""
        await self._enforce_limit(
            "email_ip",
            client.ip,
            self._settings.email_rate_limit * 10,
            self._settings.email_rate_window_seconds,
        )

    async def resend_verification(self, email: str) -> None:
        """Mail a fresh link if the account exists and is unverified.

        Runs after the response was sent (see the router), so the answer takes the same time
        whether or not the address has an account; the per-address limit is silent for the
        same reason.
        """
        email = email.lower()
        if not await self._within_email_limit("verify", email):
            return
        user = await self._users.get_by_email(email)
        if user is None or user.email_verified_at is not None or user.deletion_pending:
            return
        await self._links.issue(user, ActionTokenPurpose.VERIFY_EMAIL)

    async def forgot_password(self, email: str) -> None:
        """Mail a reset link if the account exists; runs after the response, like the above."""
        email = email.lower()
        if not await self._within_email_limit("reset", email):
            return
        user = await self._users.get_by_email(email)
        if user is None or user.deletion_pending:
            return
        await self._links.issue(user, ActionTokenPurpose.RESET_PASSWORD)

    async def reset_password(self, *, token: str, new_password: str, client: Client) -> None:
        await self._limit_token_guesses(client.ip)
        # Only a live token earns the (deliberately slow) hash, computed with no connection held.
        await self._links.find_usable(token, ActionTokenPurpose.RESET_PASSWORD)
        await self._uow.release_connection()
        password_hash = await self._hasher.hash(new_password)
        action = await self._links.spend(token, ActionTokenPurpose.RESET_PASSWORD)
        user = await self._users.get(action.user_id, for_update=True)
        assert user is not None
        now = datetime.now(UTC)
        user.password_hash = password_hash
        user.password_changed_at = now
        # The mail proved control of the address, so it also counts as verification.
        user.email_verified_at = user.email_verified_at or now
        await self._tokens.retire_action_tokens(user.id, ActionTokenPurpose.RESET_PASSWORD, now)
        # An address change asked for with the old password is cancelled with it.
        await self._tokens.retire_action_tokens(user.id, ActionTokenPurpose.CHANGE_EMAIL, now)
        families = await self._tokens.revoke_all_families(user.id, "password_reset", now)
        self._revoker.stop(user.id, families)
        self._activity.record(
            user.id, ActivityKind.PASSWORD_RESET, client, sessions_ended=len(families)
        )
        self._uow.after_commit(lambda: self._lockout.clear(user.email))
        log.info("password_reset", user_id=str(user.id), sessions_revoked=len(families))

    async def _start_session(self, user_id: uuid.UUID, client: Client) -> TokenPair:
        family = RefreshTokenFamily(
            id=uuid.uuid4(),
            user_id=user_id,
            last_used_at=datetime.now(UTC),
            ip_network=client.network,
            user_agent=client.user_agent,
        )
        self._tokens.add(family)
        await self._uow.session.flush()
        session_ends = datetime.now(UTC) + timedelta(days=self._settings.session_max_days)
        return self._issue_pair(user_id, family.id, not_after=session_ends)

    def _issue_pair(
        self, user_id: uuid.UUID, family_id: uuid.UUID, *, not_after: datetime
    ) -> TokenPair:
        """No token of the pair outlives its session."""

        def issue(kind: TokenType) -> tuple[str, TokenClaims]:
            return issue_token(
                self._settings,
                user_id=user_id,
                token_type=kind,
                family_id=family_id,
                not_after=not_after,
            )

        access, access_claims = issue("access")
        refresh, claims = issue("refresh")
        self._tokens.add(
            RefreshToken(
                id=claims.token_id,
                family_id=family_id,
                token_hash=hash_token(refresh),
                expires_at=claims.expires_at,
            )
        )
        expires_in = int((access_claims.expires_at - access_claims.issued_at).total_seconds())
        return TokenPair(access, refresh, expires_in)

    async def _enforce_limit(
        self, name: str, key: str, limit: int, window: int, *, fail_open: bool | None = None
    ) -> None:
        await self._limiter.enforce(
            name, key, limit=limit, window_seconds=window, fail_open=fail_open
        )

    async def limit_link_guesses(self, client: Client) -> None:
        """Every route that takes a mailed token shares one per-IP limit (the login's)."""
        await self._limit_token_guesses(client.ip)

    async def _limit_token_guesses(self, client_ip: str) -> None:
        await self._enforce_limit(
            "token_ip",
            client_ip,
            self._settings.login_rate_limit,
            self._settings.login_rate_window_seconds,
        )

    async def _within_email_limit(self, kind: str, email: str) -> bool:
        result = await self._limiter.hit(
            f"email_{kind}",
            email,
            limit=self._settings.email_rate_limit,
            window_seconds=self._settings.email_rate_window_seconds,
        )
        return result.allowed
