"""Errors of the change feed."""

from __future__ import annotations

from common.errors import AppError


class ResyncRequired(AppError):
    """The feed cannot bring this cursor up to date: start again without `since`."""

    status = 410
    code = "resync-required"
    title = "Resync required"
