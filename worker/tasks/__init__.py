"""Celery task modules; each is a thin wrapper over a coroutine run on the worker's loop."""

from worker.tasks import cache, email, maintenance, reminders, webhooks

__all__ = ["cache", "email", "maintenance", "reminders", "webhooks"]
