"""Errors of personal tokens, exports and account erasure."""

from __future__ import annotations

from common.errors import AppError, Conflict, RateLimited


class TooManyTokens(Conflict):
    code = "too-many-tokens"
    title = "Too many personal access tokens"


class ExportRunning(Conflict):
    code = "export-running"
    title = "An export is already being prepared"


class ExportsSpent(RateLimited):
    code = "export-limit"


class ArchiveTooLarge(AppError):
    code = "export-too-large"
    title = "The export is larger than allowed"


class NoticePending(Exception):
    """A notice of the account is still to be mailed; retry the erasure shortly."""
