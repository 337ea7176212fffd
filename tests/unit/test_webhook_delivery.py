"""Delivering to a real HTTP(S) receiver: what each kind of answer becomes, and what is refused.

The receiver (`tests/support/webhook_receiver.py`) listens on loopback, so these deliveries run
with `allow_insecure=True` (loopback and http allowed) unless the test is about refusing it.
"""

from __future__ import annotations

import inspect
import json
import ssl
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
import trustme

from common.webhooks.delivery import (
    MAX_RESPONSE_BYTES,
    DeliveryResult,
    Outcome,
    deliver,
)
from common.webhooks.signing import generate_secret, webhook_headers
from common.webhooks.targets import Resolver, system_resolver
from devstack.machine import free_port
from tests.support.webhook_receiver import Answer, FakeDNS, WebhookReceiver

BODY = json.dumps({"type": "task.completed", "data": {"id": "7"}}).encode()
MSG_ID = "msg_2f1c9a0b7e6d4c3b8a5f0e1d2c3b4a59"


@pytest.fixture
def secret() -> str:
    return generate_secret()


@pytest.fixture
def receiver(secret: str) -> Iterator[WebhookReceiver]:
    with WebhookReceiver(secret=secret) as running:
        yield running


async def send(
    url: str,
    secret: str,
    *,
    allow_insecure: bool = True,
    resolver: Resolver = system_resolver,
    ssl_context: ssl.SSLContext | None = None,
    time_limit: float = 10.0,
) -> DeliveryResult:
    headers = webhook_headers(msg_id=MSG_ID, body=BODY, secrets=[secret])
    return await deliver(
        url,
        body=BODY,
        headers=headers,
        allow_insecure=allow_insecure,
        resolver=resolver,
        ssl_context=ssl_context,
        time_limit=time_limit,
    )


async def test_a_signed_delivery_arrives_once_and_verifies(
    receiver: WebhookReceiver, secret: str
) -> None:
    result = await send(receiver.url(), secret)
    assert (result.outcome, result.status_code, result.delivered) == (Outcome.DELIVERED, 200, True)
    assert not result.retryable
    assert result.address == "127.0.0.1"
    assert result.error is None and result.response_body is None
    assert 0 <= result.duration_ms < 5000
    [request] = receiver.requests
    assert (request.method, request.path, request.body) == ("POST", "/hook", BODY)
    assert request.signature_valid is True
    assert request.headers["webhook-id"] == MSG_ID
    assert request.headers["content-type"] == "application/json"
    assert request.headers["user-agent"] == "Taskpipe-Webhooks/1.0"
    assert request.headers["host"] == f"127.0.0.1:{receiver.port}"


async def test_a_callers_host_header_cannot_redirect_the_request(
    receiver: WebhookReceiver, secret: str
) -> None:
    headers = {**webhook_headers(msg_id=MSG_ID, body=BODY, secrets=[secret]), "Host": "evil"}
    result = await deliver(receiver.url(), body=BODY, headers=headers, allow_insecure=True)
    assert result.delivered
    assert receiver.requests[0].headers["host"] == f"127.0.0.1:{receiver.port}"


async def test_a_host_name_is_resolved_once_and_the_checked_address_is_what_we_connect_to(
    receiver: WebhookReceiver, secret: str
) -> None:
    # The system resolver does not know hooks.example: reaching the receiver proves the
    # connection went to the address our resolver gave and was checked, not to a new lookup.
    dns = FakeDNS({"hooks.example": ["127.0.0.1"]})
    result = await send(receiver.url(host="hooks.example"), secret, resolver=dns)
    assert result.delivered
    assert dns.lookups == ["hooks.example"]
    assert receiver.requests[0].headers["host"] == f"hooks.example:{receiver.port}"


async def test_the_next_checked_address_is_tried_when_one_refuses_the_connection(
    receiver: WebhookReceiver, secret: str
) -> None:
    dns = FakeDNS({"hooks.example": ["127.0.0.2", "127.0.0.1"]})  # nobody listens on .2
    result = await send(receiver.url(host="hooks.example"), secret, resolver=dns)
    assert result.delivered
    assert result.address == "127.0.0.1"


async def test_a_500_is_a_retryable_failure_and_the_retry_succeeds(
    receiver: WebhookReceiver, secret: str
) -> None:
    receiver.fail_next(2)
    first = await send(receiver.url(), secret)
    second = await send(receiver.url(), secret)
    third = await send(receiver.url(), secret)
    for failed in (first, second):
        assert (failed.outcome, failed.status_code, failed.retryable) == (
            Outcome.HTTP_ERROR,
            500,
            True,
        )
        assert failed.error == "HTTP 500 Internal Server Error"
        assert failed.response_body == "receiver is down"
    assert third.delivered
    assert {r.headers["webhook-id"] for r in receiver.requests} == {MSG_ID}
    assert all(r.signature_valid for r in receiver.requests)


async def test_a_429_is_retryable_after_the_time_it_asks_for(
    receiver: WebhookReceiver, secret: str
) -> None:
    in_two_minutes = format_datetime(datetime.now(UTC) + timedelta(seconds=120), usegmt=True)
    receiver.answer(
        Answer(429, {"Retry-After": "7"}),
        Answer(503, {"Retry-After": in_two_minutes}),
        Answer(503, {"Retry-After": "Thursday, maybe"}),
        Answer(503, {"Retry-After": "Thu, 01 Jan 1970 00:00:00 GMT"}),
        Answer(503, {"Retry-After": "Thu, 01 Jan 1970 00:00:00 -0000"}),  # no zone: UTC
    )
    rate_limited = await send(receiver.url(), secret)
    assert (rate_limited.status_code, rate_limited.retryable) == (429, True)
    assert rate_limited.retry_after_seconds == 7
    dated = await send(receiver.url(), secret)
    assert dated.retry_after_seconds is not None
    assert 115 <= dated.retry_after_seconds <= 120
    assert (await send(receiver.url(), secret)).retry_after_seconds is None
    assert (await send(receiver.url(), secret)).retry_after_seconds == 0
    assert (await send(receiver.url(), secret)).retry_after_seconds == 0


@pytest.mark.parametrize("status", [400, 401, 404, 410, 422])
async def test_other_4xx_answers_fail_without_retry(
    receiver: WebhookReceiver, secret: str, status: int
) -> None:
    receiver.answer(Answer(status, body=b'{"error": "nope"}'))
    result = await send(receiver.url(), secret)
    assert (result.outcome, result.status_code, result.retryable) == (
        Outcome.HTTP_ERROR,
        status,
        False,
    )
    assert result.response_body == '{"error": "nope"}'


@pytest.mark.parametrize(
    "location", ["/elsewhere", "http://169.254.169.254/latest/meta-data/", "http://10.0.0.1/"]
)
async def test_a_redirect_is_a_failed_attempt_and_is_never_followed(
    receiver: WebhookReceiver, secret: str, location: str
) -> None:
    receiver.answer(Answer(302, {"Location": location}))
    result = await send(receiver.url(), secret)
    assert (result.outcome, result.status_code, result.retryable) == (
        Outcome.REDIRECT,
        302,
        False,
    )
    assert result.error == (
        f"HTTP 302 Found: redirect to {location!r} not followed; update the endpoint's URL"
    )
    assert [r.path for r in receiver.requests] == ["/hook"]


async def test_a_slow_receiver_is_a_retryable_timeout(
    receiver: WebhookReceiver, secret: str
) -> None:
    assert inspect.signature(deliver).parameters["time_limit"].default == 10.0
    receiver.answer(Answer(delay_seconds=5))
    result = await send(receiver.url(), secret, time_limit=0.5)
    assert (result.outcome, result.retryable) == (Outcome.TIMEOUT, True)
    assert result.error == "no complete answer within 0.5 s"
    assert 400 <= result.duration_ms < 3000
    assert len(receiver.requests) == 1  # it arrived; its answer did not


async def test_nobody_listening_is_a_retryable_network_error(secret: str) -> None:
    result = await send(f"http://127.0.0.1:{free_port()}/hook", secret)
    assert (result.outcome, result.retryable) == (Outcome.NETWORK_ERROR, True)
    assert result.error is not None and result.error.startswith("ConnectError")


async def test_a_name_that_does_not_resolve_is_a_retryable_network_error(secret: str) -> None:
    result = await send("https://gone.example/hook", secret, resolver=FakeDNS({}))
    assert (result.outcome, result.retryable) == (Outcome.NETWORK_ERROR, True)
    assert result.error == "gaierror: [Errno -2] Name or service not known"


async def test_only_the_first_64_kib_of_an_error_body_are_read_and_nul_is_replaced(
    receiver: WebhookReceiver, secret: str
) -> None:
    receiver.answer(Answer(500, body=b"\x00" + b"x" * (4 * MAX_RESPONSE_BYTES)))
    result = await send(receiver.url(), secret)
    assert result.response_body is not None
    assert len(result.response_body.encode()) == MAX_RESPONSE_BYTES + 2  # U+FFFD is 3 bytes
    assert result.response_body.startswith("\ufffdxxx")


async def test_proxy_settings_in_the_environment_are_ignored(
    receiver: WebhookReceiver, secret: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A proxy would resolve the host name again, behind the guard's back.
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.setenv(name, f"http://127.0.0.1:{free_port()}")
    assert (await send(receiver.url(), secret)).delivered


# Refused before any connection


@pytest.mark.parametrize(
    ("url", "allow_insecure", "reason"),
    [
        ("https://127.0.0.1:{port}/hook", False, "127.0.0.1 is a loopback address"),
        ("http://127.0.0.1:{port}/hook", False, "only https URLs are accepted"),
        ("https://[::1]:{port}/hook", False, "::1 is a loopback address"),
        ("https://localhost:{port}/hook", False, "localhost resolves to"),
        ("https://0x7f000001:{port}/hook", True, "is not an address in standard form"),
        ("https://2130706433:{port}/hook", True, "is not an address in standard form"),
        ("http://169.254.169.254/latest/meta-data/", True, "a cloud metadata address"),
        ("http://10.0.0.1/hook", True, "10.0.0.1 is a private address (RFC 1918)"),
        ("http://[::ffff:10.0.0.1]/hook", True, "a private address (RFC 1918), inside an IPv6"),
        ("http://metadata.google.internal/", True, "a cloud metadata service"),
    ],
)
async def test_a_refused_target_is_never_contacted(
    receiver: WebhookReceiver, secret: str, url: str, allow_insecure: bool, reason: str
) -> None:
    result = await send(url.format(port=receiver.port), secret, allow_insecure=allow_insecure)
    assert (result.outcome, result.retryable, result.status_code) == (
        Outcome.REFUSED,
        False,
        None,
    )
    assert result.error is not None and reason in result.error
    assert receiver.requests == []


async def test_a_name_with_one_private_address_among_loopback_ones_is_refused(
    receiver: WebhookReceiver, secret: str
) -> None:
    dns = FakeDNS({"rebind.example": ["127.0.0.1", "10.0.0.1"]})
    result = await send(receiver.url(host="rebind.example"), secret, resolver=dns)
    assert result.outcome is Outcome.REFUSED
    assert result.error == (
        "rebind.example resolves to a private address (RFC 1918); "
        "webhooks go to public addresses only"
    )
    assert receiver.requests == []


# TLS to a pinned address


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def _server_context(ca: trustme.CA, name: str) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(name).configure_cert(context)
    return context


def _client_context(ca: trustme.CA | None) -> ssl.SSLContext:
    context = ssl.create_default_context()
    if ca is not None:
        ca.configure_trust(context)
    return context


async def test_tls_to_the_pinned_address_sends_and_verifies_the_host_name(
    ca: trustme.CA, secret: str
) -> None:
    dns = FakeDNS({"hooks.example": ["127.0.0.1"]})
    with WebhookReceiver(secret=secret, tls=_server_context(ca, "hooks.example")) as receiver:
        result = await send(
            receiver.url(host="hooks.example"),
            secret,
            resolver=dns,
            ssl_context=_client_context(ca),
        )
        assert result.delivered, result.error
        [request] = receiver.requests
    assert request.server_name == "hooks.example"
    assert request.headers["host"] == f"hooks.example:{receiver.port}"
    assert request.signature_valid


@pytest.mark.parametrize(
    ("certified_name", "trusted"), [("someone-else.example", True), ("hooks.example", False)]
)
async def test_tls_refuses_a_certificate_not_valid_for_the_host_name(
    ca: trustme.CA, secret: str, certified_name: str, trusted: bool
) -> None:
    dns = FakeDNS({"hooks.example": ["127.0.0.1"]})
    with WebhookReceiver(secret=secret, tls=_server_context(ca, certified_name)) as receiver:
        result = await send(
            receiver.url(host="hooks.example"),
            secret,
            resolver=dns,
            ssl_context=_client_context(ca if trusted else None),
        )
        assert receiver.requests == []
    assert (result.outcome, result.retryable) == (Outcome.NETWORK_ERROR, True)
    assert result.error is not None and "CERTIFICATE_VERIFY_FAILED" in result.error
