"""Celery task modules; each is a thin wrapper over a coroutine run on the worker's loop."""

from worker.tasks import (
    cache,
    credentials,
    email,
    erasure,
    exports,
    maintenance,
    notices,
    reminders,
    webhooks,
)

__all__ = [
    "cache",
    "credentials",
    "email",
    "erasure",
    "exports",
    "maintenance",
    "notices",
    "reminders",
    "webhooks",
]
