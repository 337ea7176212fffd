"""Errors of accounts."""

from __future__ import annotations

from common.errors import Conflict


class EmailAlreadyRegistered(Conflict):
    code = "email-already-registered"
    title = "Email already registered"

    def __init__(self) -> None:
        super().__init__("An account with this email already exists")
