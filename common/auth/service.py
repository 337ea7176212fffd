"""Registration, login, token rotation, email verification and password reset."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.exc import IntegrityError

from common.auth.lockout import LoginLockout
from common.auth.repository import AuthRepository
from common.auth.revocation import TokenRevocations
from common.config import Settings
from common.db.uow import UnitOfWork
from common.errors import (
    EmailAlreadyRegistered,
    InvalidCredentials,
    InvalidInput,
    RateLimited,
    ServiceUnavailable,
    Unauthorized,
)
from common.jobs import JobName, Queue
from common.logging import get_logger
from common.models import ActionToken, ActionTokenPurpose, RefreshToken, RefreshTokenFamily, User
from common.ratelimit import RateLimiter
from common.security.mail_quota import MailKind, reserve_mails
from common.security.passwords import PasswordHasher
from common.security.tokens import (
    TokenClaims,
    TokenType,
    action_token_for,
    decode_token,
    hash_token,
    issue_token,
)
from common.users.repository import UserRepository

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

    async def register(
        self, *, email: str, password: str, full_name: str, client_ip: str
    ) -> Registration:
        await self._enforce_limit(
            "register",
            client_ip,
            self._settings.register_rate_limit,
            self._settings.register_rate_window_seconds,
        )
        password_hash = await self._hasher.hash(password)
        user = User(email=email.lower(), password_hash=password_hash, full_name=full_name)
        self._users.add(user)
        try:
            await self._uow.session.flush()
        except IntegrityError as exc:
            await self._uow.rollback()
            raise EmailAlreadyRegistered("An account with this email already exists") from exc
        await self._create_action_token(user, ActionTokenPurpose.VERIFY_EMAIL)
        tokens = await self._start_session(user.id)
        await self._uow.commit()
        await self._uow.session.refresh(user)
        log.info("user_registered", user_id=str(user.id))
        return Registration(user=user, tokens=tokens)

    async def login(self, *, email: str, password: str, client_ip: str) -> tuple[User, TokenPair]:
        email = email.lower()
        # Both limits guard password guessing, so they fail closed (503) without their store.
        await self._enforce_limit(
            "login",
            client_ip,
            self._settings.login_rate_limit,
            self._settings.login_rate_window_seconds,
            fail_open=False,
        )
        attempt = await self._lockout.begin_attempt(email, client_ip)
        try:
            user = await self._users.get_by_email(email)
            # Release the connection before the slow hash: a login burst must not drain the pool.
            await self._uow.session.commit()
            verified = await self._hasher.verify(password, user.password_hash if user else None)
        except Exception:  # too busy to hash, or the database failed: no password was checked
            await self._lockout.withdraw(attempt)
            raise
        if not verified:
            log.info("login_failed", reason="bad_credentials")
            raise InvalidCredentials("Invalid email or password")
        assert user is not None
        await self._lockout.succeeded(attempt)
        user.last_seen_at = datetime.now(UTC)
        tokens = await self._start_session(user.id)
        # The client's next move is almost always the task list: have it ready.
        self._uow.enqueue(JobName.WARM_USER_CACHE, Queue.CACHE, user_id=str(user.id))
        await self._uow.commit()
        log.info("login_succeeded", user_id=str(user.id))
        return user, tokens

    async def refresh(self, refresh_token: str) -> TokenPair:
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
            await self._tokens.revoke_family(family.id, "reuse", now)
            await self._uow.commit()
            await self._revocations.revoke_families(family.user_id, [family.id])
            log.warning(
                "refresh_token_reuse", user_id=str(family.user_id), family_id=str(family.id)
            )
            raise Unauthorized("Refresh token was already used; the session has been revoked")
        if token.expires_at <= now:
            raise Unauthorized("Refresh token has expired")
        session_ends = family.created_at + timedelta(days=self._settings.session_max_days)
        if session_ends <= now:
            raise Unauthorized("This session has reached its maximum age; log in again")
        token.used_at = now
        pair = self._issue_pair(family.user_id, family.id, not_after=session_ends)
        await self._uow.commit()
        return pair

    async def logout(self, refresh_token: str) -> None:
        """End the session the refresh token belongs to; repeating it is harmless."""
        claims = decode_token(self._settings, refresh_token, "refresh")
        found = await self._tokens.get_refresh_token_for_update(claims.token_id)
        if found is None or found[0].token_hash != hash_token(refresh_token):
            raise Unauthorized("Invalid refresh token")
        await self._end_session(found[1].user_id, found[1].id)

    async def logout_access(self, claims: TokenClaims) -> None:
        """End the session a verified access token belongs to (a client that kept no refresh
        token can still sign out); repeating it is harmless."""
        if claims.family_id is None:
            raise Unauthorized("Invalid token")
        await self._end_session(claims.user_id, claims.family_id)

    async def _end_session(self, user_id: uuid.UUID, family_id: uuid.UUID) -> None:
        await self._tokens.revoke_family(family_id, "logout", datetime.now(UTC))
        await self._uow.commit()
        await self._revocations.revoke_families(user_id, [family_id])

    async def verify_email(self, token: str, *, client_ip: str) -> User:
        await self._limit_token_guesses(client_ip)
        action = await self._use_action_token(token, ActionTokenPurpose.VERIFY_EMAIL)
        user = await self._users.get(action.user_id, for_update=True)
        assert user is not None  # tokens cascade with their user
        if user.email_verified_at is None:
            user.email_verified_at = action.used_at
        await self._uow.commit()
        log.info("email_verified", user_id=str(user.id))
        return user

    async def limit_mail_requests(self, client_ip: str) -> None:
        """The per-IP limit of resend-verification and forgot-password (a visible 429)."""
        await self._enforce_limit(
            "email_ip",
            client_ip,
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
        if user is None or user.email_verified_at is not None:
            return
        await self._create_action_token(user, ActionTokenPurpose.VERIFY_EMAIL)
        await self._uow.commit()

    async def forgot_password(self, email: str) -> None:
        """Mail a reset link if the account exists; runs after the response, like the above."""
        email = email.lower()
        if not await self._within_email_limit("reset", email):
            return
        user = await self._users.get_by_email(email)
        if user is None:
            return
        await self._create_action_token(user, ActionTokenPurpose.RESET_PASSWORD)
        await self._uow.commit()

    async def reset_password(self, *, token: str, new_password: str, client_ip: str) -> None:
        await self._limit_token_guesses(client_ip)
        # Only a live token earns the (deliberately slow) hash, computed with no connection held.
        await self._find_usable_action_token(token, ActionTokenPurpose.RESET_PASSWORD)
        await self._uow.session.commit()
        password_hash = await self._hasher.hash(new_password)
        action = await self._use_action_token(token, ActionTokenPurpose.RESET_PASSWORD)
        user = await self._users.get(action.user_id, for_update=True)
        assert user is not None
        now = datetime.now(UTC)
        user.password_hash = password_hash
        user.password_changed_at = now
        # The mail proved control of the address, so it also counts as verification.
        user.email_verified_at = user.email_verified_at or now
        await self._tokens.retire_action_tokens(user.id, ActionTokenPurpose.RESET_PASSWORD, now)
        families = await self._tokens.revoke_all_families(user.id, "password_reset", now)
        await self._uow.commit()
        await self._revocations.revoke_families(user.id, families)
        await self._lockout.clear(user.email)
        log.info("password_reset", user_id=str(user.id), sessions_revoked=len(families))

    async def _find_usable_action_token(
        self, token: str, purpose: ActionTokenPurpose, *, lock: bool = False
    ) -> ActionToken:
        action = await self._tokens.get_action_token(hash_token(token), purpose, for_update=lock)
        if action is None or action.used_at is not None or action.expires_at <= datetime.now(UTC):
            raise InvalidInput("The link is invalid, expired or already used", field="token")
        return action

    async def _use_action_token(self, token: str, purpose: ActionTokenPurpose) -> ActionToken:
        """Lock and spend a single-use token (two concurrent uses: one wins, one gets 400)."""
        action = await self._find_usable_action_token(token, purpose, lock=True)
        action.used_at = datetime.now(UTC)
        return action

    async def _create_action_token(self, user: User, purpose: ActionTokenPurpose) -> None:
        """A new single-use token and the job that mails its link, if the address has mail
        allowance left today; else the last link mailed stays valid."""
        now = datetime.now(UTC)
        if not await reserve_mails(
            self._uow.session, self._settings, [user.email], now=now, kind=MailKind.LINK
        ):
            log.warning("action_mail_skipped", user_id=str(user.id), purpose=purpose.value)
            return
        await self._tokens.retire_action_tokens(user.id, purpose, now)
        ttl = (
            self._settings.email_token_ttl
            if purpose is ActionTokenPurpose.VERIFY_EMAIL
            else self._settings.password_reset_token_ttl
        )
        token_id = uuid.uuid4()
        self._tokens.add(
            ActionToken(
                id=token_id,
                user_id=user.id,
                purpose=purpose,
                token_hash=hash_token(action_token_for(self._settings, token_id)),
                expires_at=now + timedelta(seconds=ttl),
            )
        )
        job = (
            JobName.SEND_VERIFICATION_EMAIL
            if purpose is ActionTokenPurpose.VERIFY_EMAIL
            else JobName.SEND_PASSWORD_RESET_EMAIL
        )
        self._uow.enqueue(job, Queue.EMAIL, token_id=str(token_id))

    async def _start_session(self, user_id: uuid.UUID) -> TokenPair:
        family = RefreshTokenFamily(id=uuid.uuid4(), user_id=user_id)
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
        result = await self._limiter.hit(
            name, key, limit=limit, window_seconds=window, fail_open=fail_open
        )
        if result.allowed:
            return
        if result.degraded:
            raise ServiceUnavailable(
                "Rate limiting is unavailable; try again shortly", headers={"Retry-After": "5"}
            )
        raise RateLimited("Too many requests; slow down", headers=result.headers)

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
