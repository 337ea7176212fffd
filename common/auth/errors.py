"""Errors of sign-up, sign-in and sessions."""

from __future__ import annotations

from common.errors import AppError, Unauthorized


class RefreshTokenReused(Unauthorized):
    """A retired refresh token came back: its session is revoked, and that revocation is kept
    although the request is refused."""

    keeps_changes = True

    def __init__(self) -> None:
        super().__init__("Refresh token was already used; the session has been revoked")


class InvalidCredentials(AppError):
    """A failed sign-in: its activity event is kept although the request is refused."""

    status = 401
    code = "invalid-credentials"
    title = "Invalid email or password"
    keeps_changes = True


class AccountLocked(AppError):
    """`newly`: this attempt set the lock (its activity event is kept)."""

    status = 423
    code = "account-locked"
    title = "Account temporarily locked"
    keeps_changes = True

    def __init__(self, retry_after_seconds: int, *, newly: bool = False) -> None:
        super().__init__(
            "Too many failed logins; try again later",
            headers={"Retry-After": str(retry_after_seconds)},
        )
        self.newly = newly
