"""How every job runs: its retries, its time limits and the end of its outbox row, in one place.

A job is an async function `body(runtime, **kwargs)` registered with `@job(...)`. Around it:

- **Retries.** Every job retries when PostgreSQL is out of reach (a dropped connection, a
  restart); mail jobs also on SMTP and connection errors. Delays grow exponentially with
  jitter, and the policy's `max_retries` is the only limit (the Celery task's own is off:
  its default of 3 used to end a mail job at the fourth SMTP refusal). A short delay is a
  Celery countdown; a long one is handed back to the outbox with a not-before time and the
  message is acknowledged. On a Redis broker a message held for a countdown stays
  unacknowledged, and once it is held longer than the visibility timeout the broker hands it
  out again, and again (Celery's docs on the Redis transport, celery#2481, #4400); so Celery
  only ever holds countdowns up to a fifth of the visibility timeout, and the time limits
  keep countdown plus run time well below it.
- **The outbox row** (the job's id) is deleted when the job succeeded, never before: a job
  whose message is lost, or whose worker dies, is published again by the relay. Every retry
  moves the row's `due_at` to when the relay should act (the not-before time of a retry
  handed back; the end of a Celery countdown plus the redelivery bound) and records the
  retry count, so the relay never copies a job that is only waiting, and a copy carries the
  count on. A job that fails for good is dropped, or, under a policy that keeps it (mails),
  parked in the outbox for an operator. Jobs are idempotent, so a second run finds its work
  done.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, NoReturn

from celery import Task, signals
from celery.exceptions import Ignore

from common.config import get_settings
from common.db.errors import database_unavailable
from common.db.outbox import OutboxRepository
from common.jobs import Job, request_id_of
from common.logging import get_logger
from worker.app import app
from worker.runtime import WorkerRuntime, run

log = get_logger(__name__)

JobBody = Callable[..., Coroutine[Any, Any, Any]]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    retry_on: tuple[type[BaseException], ...] = ()
    max_retries: int = 10
    backoff_seconds: float = 1.0
    backoff_max_seconds: float = 60.0
    keep_failed: bool = False
    """Park a job that failed for good in the outbox instead of dropping it."""

    def retryable(self, exc: BaseException) -> bool:
        return isinstance(exc, self.retry_on) or database_unavailable(exc)

    def delay(self, retries: int) -> float:
        """Exponential backoff with "equal jitter": half of the step fixed, half random, so
        retries of many jobs spread out but none comes back at once."""
        step = min(self.backoff_max_seconds, self.backoff_seconds * 2**retries)
        return float(step / 2 + random.uniform(0, step / 2))  # noqa: S311 (not a secret)


DATABASE_RETRY = RetryPolicy()
"""Every job: about 8 minutes of retries while PostgreSQL is away; the outbox row (if any)
outlives a longer outage, and the relay publishes the job again afterwards."""


def countdown_limit() -> float:
    """The longest countdown Celery may hold for a retry (see the module docstring)."""
    return float(app.conf.broker_transport_options["visibility_timeout"]) / 5.0


def job(
    name: str,
    *,
    soft_time_limit: int,
    time_limit: int,
    policy: RetryPolicy = DATABASE_RETRY,
) -> Callable[[JobBody], Task[Any, Any]]:
    """Register `body` as the Celery task `name` under the policy above."""

    def register(body: JobBody) -> Task[Any, Any]:
        def task(self: Task[Any, Any], /, **kwargs: Any) -> Any:
            try:
                result = run(lambda runtime: body(runtime, **kwargs))
            except Exception as exc:
                if policy.retryable(exc) and self.request.retries < policy.max_retries:
                    _retry_later(self, policy, exc)  # raises Retry, or Ignore once handed back
                log.error("job_failed", error=repr(exc), retries=self.request.retries)
                _finish(self.request.id, park=policy.keep_failed)
                raise
            _finish(self.request.id)
            return result

        task.__name__ = body.__name__
        task.__qualname__ = body.__qualname__
        task.__doc__ = body.__doc__
        task.__module__ = body.__module__
        return app.task(
            name=name,
            bind=True,
            soft_time_limit=soft_time_limit,
            time_limit=time_limit,
            max_retries=None,  # the policy's limit, checked above, is the only one
        )(task)

    return register


def _retry_later(task: Task[Any, Any], policy: RetryPolicy, exc: Exception) -> NoReturn:
    """Retry in `policy.delay`: a short wait as a Celery countdown, a long one in the outbox."""
    retries = task.request.retries
    delay = policy.delay(retries)
    log.warning("job_retry", error=repr(exc), retries=retries, delay=round(delay, 1))
    held_by_celery = delay <= countdown_limit()
    relay_acts_in = delay + get_settings().outbox_redeliver_seconds if held_by_celery else delay
    try:
        run(lambda runtime: _reschedule(runtime, task, relay_acts_in))
    except Exception as reschedule_error:  # PostgreSQL away too: Celery holds a short one
        log.warning("job_reschedule_failed", error=repr(reschedule_error))
        held_by_celery = True
    if held_by_celery:
        raise task.retry(exc=exc, countdown=min(delay, countdown_limit()))
    # Handed back: a retry, not a success (the relay publishes it when it is due).
    signals.task_retry.send(sender=task, request=task.request, reason=exc, einfo=None)
    raise Ignore()


async def _reschedule(runtime: WorkerRuntime, task: Task[Any, Any], relay_acts_in: float) -> None:
    """Record the next retry in the job's outbox row (created if the job had none): the relay
    publishes the job `relay_acts_in` seconds from now, if it has not finished by then."""
    request = task.request
    queue = (request.delivery_info or {}).get("routing_key") or app.amqp.router.route(
        {}, task.name
    )["queue"].name
    job = Job(
        task_name=task.name,
        queue=queue,
        kwargs=dict(request.kwargs or {}),
        id=uuid.UUID(request.id),  # our task ids are the outbox ids
        request_id=request_id_of(request),
        retries=request.retries + 1,
    )
    async with runtime.unit_of_work() as uow:
        await OutboxRepository(uow.session).reschedule(job, due_in=timedelta(seconds=relay_acts_in))


def _finish(job_id: str | None, *, park: bool = False) -> None:
    """The job is over: its outbox row goes, or, when `park`, stays where the relay no longer
    publishes it (docs/operations.md says how to publish it again). If PostgreSQL is away the
    row stays as it is, and the relay publishes the job again later; the job's idempotency key
    makes that a no-op."""
    try:
        outbox_id = uuid.UUID(job_id or "")
    except ValueError:  # not published by us (a hand-made message): no row to forget
        return

    async def forget(runtime: WorkerRuntime) -> None:
        async with runtime.unit_of_work() as uow:
            parked = await OutboxRepository(uow.session).finish(outbox_id, park=park)
        if parked:
            log.error("job_parked", outbox_id=str(outbox_id))

    try:
        run(forget)
    except Exception as exc:
        if not database_unavailable(exc):
            raise
        log.warning("job_finish_deferred", error=repr(exc))
