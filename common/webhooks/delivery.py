"""One delivery attempt of a signed webhook: resolve, check, connect to the checked address.

The only module of the application that makes HTTP requests (tests/unit/test_outbound_calls.py
holds it to that). It resolves the host once, refuses the URL if any address is refused
(`targets`), then sends to a checked address itself, never to the name: the request goes to
`https://<address>/...` with the `Host` header and the TLS server name (SNI, and the name the
certificate is verified against) set to the host name. That is httpx's documented
`sni_hostname` request extension (docs/advanced/extensions.md), so no custom transport is
needed and certificate verification stays httpx's own.

Each attempt gets its own client and connection: a pooled TLS connection verified for one host
name must never carry a request for another host at the same address. Proxies from the
environment are ignored (`trust_env=False`): a proxy would resolve the name again.

Everything the caller needs to record the attempt and schedule the next one comes back in a
`DeliveryResult`; nothing raises for what a receiver or the network does.
"""

from __future__ import annotations

import asyncio
import email.utils
import functools
import math
import re
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import StrEnum

import httpx

from common.webhooks.targets import (
    IPAddress,
    RefusedTarget,
    Resolver,
    WebhookTarget,
    parse_target,
    resolve_target,
    system_resolver,
)

TIMEOUT_SECONDS = 10.0
# Enough of a failed answer to show its owner why; a receiver cannot make us read more.
MAX_RESPONSE_BYTES = 64 * 1024
MAX_ERROR_CHARACTERS = 500
USER_AGENT = "Taskpipe-Webhooks/1.0"
_SECONDS = re.compile(r"\d{1,10}", re.ASCII)


class Outcome(StrEnum):
    DELIVERED = "delivered"  # a 2xx answer
    HTTP_ERROR = "http_error"  # any other answer but a redirect
    REDIRECT = "redirect"  # 3xx: not followed (the endpoint's URL should be updated)
    TIMEOUT = "timeout"  # no complete answer within the timeout
    NETWORK_ERROR = "network_error"  # DNS, connect, TLS or protocol failure
    REFUSED = "refused"  # the SSRF guard refused the URL or an address it resolves to


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    """What one attempt did, as the deliveries log shows it."""

    outcome: Outcome
    status_code: int | None = None
    error: str | None = None
    retry_after_seconds: int | None = None  # from Retry-After, unclamped: the caller caps it
    response_body: str | None = None  # the first 64 KiB of a failed answer, NUL-free text
    address: str | None = None  # the address connected to
    duration_ms: int = 0  # the whole attempt, DNS included

    @property
    def delivered(self) -> bool:
        return self.outcome is Outcome.DELIVERED

    @property
    def retryable(self) -> bool:
        """Network trouble, timeouts, 5xx and 429 may pass; other answers and refusals won't."""
        if self.outcome in (Outcome.TIMEOUT, Outcome.NETWORK_ERROR):
            return True
        status = self.status_code or 0
        return self.outcome is Outcome.HTTP_ERROR and (status >= 500 or status == 429)


async def deliver(
    url: str,
    *,
    body: bytes,
    headers: Mapping[str, str],
    allow_insecure: bool,
    time_limit: float = TIMEOUT_SECONDS,
    resolver: Resolver = system_resolver,
    ssl_context: ssl.SSLContext | None = None,
) -> DeliveryResult:
    """POST `body` to `url` once, with `headers` (the webhook-* ones from `signing`).

    `time_limit` (seconds) bounds the whole attempt: DNS, connect, TLS, sending and the answer.
    `resolver` and `ssl_context` exist for tests (a fake DNS name, a test CA).
    """
    started = time.monotonic()
    try:
        target = parse_target(url, allow_insecure=allow_insecure)
        async with asyncio.timeout(time_limit):
            addresses = await resolve_target(
                target, allow_insecure=allow_insecure, resolver=resolver
            )
            result = await _send(
                target, addresses, body, headers, ssl_context or _default_ssl_context(), time_limit
            )
    except RefusedTarget as refused:
        result = DeliveryResult(Outcome.REFUSED, error=refused.detail)
    except (TimeoutError, httpx.TimeoutException):
        result = DeliveryResult(
            Outcome.TIMEOUT, error=f"no complete answer within {time_limit:g} s"
        )
    except (OSError, httpx.TransportError) as failure:
        result = DeliveryResult(Outcome.NETWORK_ERROR, error=_shorten(_describe(failure)))
    return replace(result, duration_ms=round((time.monotonic() - started) * 1000))


async def _send(
    target: WebhookTarget,
    addresses: list[IPAddress],
    body: bytes,
    headers: Mapping[str, str],
    ssl_context: ssl.SSLContext,
    time_limit: float,
) -> DeliveryResult:
    """Send to the first address that takes the connection, in the resolver's order."""
    request_headers = {
        "content-type": "application/json",
        **{name.lower(): value for name, value in headers.items()},
        "host": target.host_header,
        "user-agent": USER_AGENT,
        # Raw bytes only: a compressed error body could expand far past what we mean to read.
        "accept-encoding": "identity",
    }
    # The name the certificate must be valid for; an address in the URL is verified as itself.
    extensions = {"sni_hostname": target.host} if target.address is None else {}
    async with httpx.AsyncClient(
        verify=ssl_context, trust_env=False, follow_redirects=False, timeout=time_limit
    ) as client:

        async def post_to(address: IPAddress) -> DeliveryResult:
            url = httpx.URL(
                scheme=target.scheme,
                host=str(address),
                port=target.port,
                raw_path=target.target.encode("ascii"),
            )
            async with client.stream(
                "POST", url, content=body, headers=request_headers, extensions=extensions
            ) as response:
                return await _judge(response, str(address))

        for address in addresses[:-1]:
            try:
                return await post_to(address)
            except httpx.ConnectError:
                continue
        return await post_to(addresses[-1])


async def _judge(response: httpx.Response, address: str) -> DeliveryResult:
    status = response.status_code
    if 200 <= status < 300:
        return DeliveryResult(Outcome.DELIVERED, status_code=status, address=address)
    error = f"HTTP {status} {response.reason_phrase}".rstrip()
    outcome = Outcome.HTTP_ERROR
    if 300 <= status < 400:
        outcome = Outcome.REDIRECT
        location = response.headers.get("location", "")
        error += f": redirect to {location!r} not followed; update the endpoint's URL"
    return DeliveryResult(
        outcome,
        status_code=status,
        error=_shorten(error),
        retry_after_seconds=_retry_after(response.headers.get("retry-after")),
        response_body=await _excerpt(response),
        address=address,
    )


async def _excerpt(response: httpx.Response) -> str:
    """At most MAX_RESPONSE_BYTES of the body, as text PostgreSQL can store (no NUL)."""
    received = bytearray()
    async for chunk in response.aiter_raw():
        received += chunk
        if len(received) >= MAX_RESPONSE_BYTES:
            break
    text = bytes(received[:MAX_RESPONSE_BYTES]).decode("utf-8", "replace")
    return text.replace("\x00", "\ufffd")


def _retry_after(value: str | None) -> int | None:
    """Retry-After as seconds from now: delta-seconds or an HTTP-date (RFC 9110 10.2.3)."""
    if value is None:
        return None
    value = value.strip()
    if _SECONDS.fullmatch(value):
        return int(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0, math.ceil((when - datetime.now(UTC)).total_seconds()))


def _describe(failure: Exception) -> str:
    return f"{type(failure).__name__}: {failure}" if str(failure) else type(failure).__name__


def _shorten(text: str) -> str:
    return text if len(text) <= MAX_ERROR_CHARACTERS else text[: MAX_ERROR_CHARACTERS - 1] + "…"


@functools.cache
def _default_ssl_context() -> ssl.SSLContext:
    """httpx's default verification (certifi's CA bundle), built once per process."""
    return httpx.create_ssl_context()
