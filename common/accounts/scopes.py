"""What a caller may do: the scopes a personal access token can be granted, and the one it never
can.

A session (a login's access token) holds every scope. A personal access token holds the scopes
it was created with, and never `ACCOUNT_MANAGEMENT`: a token pasted into a script must not be
able to change the password or the address, mint more tokens, end sessions, export or delete
the account.
"""

from __future__ import annotations

import enum


class Scope(enum.StrEnum):
    TASKS_READ = "tasks:read"
    TASKS_WRITE = "tasks:write"
    CATEGORIES_READ = "categories:read"
    CATEGORIES_WRITE = "categories:write"
    ACCOUNT_READ = "account:read"
    WEBHOOKS_READ = "webhooks:read"
    WEBHOOKS_WRITE = "webhooks:write"


ACCOUNT_MANAGEMENT = "account:manage"
"""Declared by the routes that manage the account (password, address, sessions, tokens,
exports, deletion): sessions only, never grantable to a personal access token."""
