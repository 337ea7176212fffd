"""HTTP against the stack's published ports, with the retry a well-behaved client would do."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from deploy.engine import SmokeFailure

RETRYABLE_STATUS = frozenset({429, 502, 503, 504})
RETRY_BUDGET_SECONDS = 30.0
LONGEST_RETRY_AFTER_SECONDS = 5.0


@dataclass
class Attempted:
    """A request's final answer, and how many tries it took (1: no retry was needed)."""

    response: httpx.Response
    attempts: int


def with_retries(
    send: Callable[[], httpx.Response], *, budget: float = RETRY_BUDGET_SECONDS
) -> Attempted:
    """Send, and retry connection failures and 429/502/503/504 with backoff (honouring a short
    Retry-After) until `budget` seconds have passed: what a client of a rolling service does.
    Only idempotent requests, or ones carrying an Idempotency-Key, may go through here."""
    deadline = time.monotonic() + budget
    delay = 0.2
    attempts = 0
    while True:
        attempts += 1
        failure: str
        try:
            response = send()
        except httpx.TransportError as exc:
            failure = repr(exc)
        else:
            if response.status_code not in RETRYABLE_STATUS:
                return Attempted(response, attempts)
            failure = f"HTTP {response.status_code}"
            retry_after = response.headers.get("Retry-After", "")
            if retry_after.isdigit():
                delay = min(float(retry_after), LONGEST_RETRY_AFTER_SECONDS)
        if time.monotonic() + delay > deadline:
            raise SmokeFailure(f"still failing after {attempts} tries in {budget:.0f} s: {failure}")
        time.sleep(delay)
        delay = min(delay * 2, 2.0)


def expect(response: httpx.Response, status: int, what: str) -> httpx.Response:
    if response.status_code != status:
        raise SmokeFailure(
            f"{what}: {response.request.method} {response.request.url.path} answered "
            f"{response.status_code}, expected {status}: {response.text[:500]}"
        )
    return response
