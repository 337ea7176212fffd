"""Standard Webhooks signatures: ours verify with the reference implementation, and back."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from datetime import UTC, datetime

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from common.webhooks.signing import (
    SignatureError,
    generate_secret,
    secret_key,
    sign,
    verify,
    webhook_headers,
)

BODY = b'{"type":"task.completed","timestamp":"2025-03-05T09:00:00Z","data":{"id":"7"}}'
MSG_ID = "msg_0b9f3c2e6d7a4f1e9c8b5a3d2e1f0a9b"


@pytest.fixture
def secret() -> str:
    return generate_secret()


def test_a_secret_is_whsec_and_32_random_bytes() -> None:
    first, second = generate_secret(), generate_secret()
    assert first.startswith("whsec_")
    assert len(secret_key(first)) == 32
    assert first != second


@pytest.mark.parametrize(
    ("secret", "reason"),
    [
        (base64.b64encode(b"k" * 32).decode(), "starts with 'whsec_'"),
        ("whsec_not*base64", "base64"),
        ("whsec_" + base64.b64encode(b"k" * 23).decode(), "24 to 64 bytes"),
        ("whsec_" + base64.b64encode(b"k" * 65).decode(), "24 to 64 bytes"),
    ],
)
def test_a_malformed_secret_is_refused(secret: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        secret_key(secret)


def test_the_signature_is_hmac_sha256_of_id_timestamp_and_body() -> None:
    secret = "whsec_" + base64.b64encode(bytes(range(32))).decode()
    signed = f"{MSG_ID}.1741165200.".encode() + BODY
    expected = hmac.new(bytes(range(32)), signed, hashlib.sha256).digest()
    assert sign(secret, msg_id=MSG_ID, timestamp=1741165200, body=BODY) == (
        "v1," + base64.b64encode(expected).decode()
    )


@pytest.mark.parametrize("msg_id", ["", "msg.1", "msg 1", "m" * 256])
def test_a_message_id_that_could_confuse_the_signed_content_is_refused(
    secret: str, msg_id: str
) -> None:
    with pytest.raises(ValueError, match="message id"):
        sign(secret, msg_id=msg_id, timestamp=1, body=BODY)


def test_the_headers_carry_id_timestamp_and_signature(secret: str) -> None:
    before = int(time.time())
    headers = webhook_headers(msg_id=MSG_ID, body=BODY, secrets=[secret])
    assert set(headers) == {"webhook-id", "webhook-timestamp", "webhook-signature"}
    assert headers["webhook-id"] == MSG_ID
    assert before <= int(headers["webhook-timestamp"]) <= int(time.time())
    verify(secret, headers=headers, body=BODY)


def test_the_reference_implementation_verifies_our_signatures(secret: str) -> None:
    headers = webhook_headers(msg_id=MSG_ID, body=BODY, secrets=[secret])
    assert Webhook(secret).verify(BODY, headers) == {
        "type": "task.completed",
        "timestamp": "2025-03-05T09:00:00Z",
        "data": {"id": "7"},
    }
    tampered = BODY.replace(b'"7"', b'"8"')
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(tampered, headers)


def test_we_verify_the_reference_implementations_signatures(secret: str) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    signature = Webhook(secret).sign(MSG_ID, now, BODY.decode())
    headers = {
        "webhook-id": MSG_ID,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": signature,
    }
    verify(secret, headers=headers, body=BODY)
    assert signature == sign(secret, msg_id=MSG_ID, timestamp=int(now.timestamp()), body=BODY)


def test_during_a_rotation_both_secrets_sign_and_either_verifies() -> None:
    old, new, stranger = generate_secret(), generate_secret(), generate_secret()
    headers = webhook_headers(msg_id=MSG_ID, body=BODY, secrets=[new, old])
    assert len(headers["webhook-signature"].split(" ")) == 2
    for secret in (old, new):
        verify(secret, headers=headers, body=BODY)
        Webhook(secret).verify(BODY, headers)
    with pytest.raises(SignatureError, match="no v1 signature matches"):
        verify(stranger, headers=headers, body=BODY)


def test_no_secret_signs_nothing() -> None:
    with pytest.raises(ValueError, match="at least one secret"):
        webhook_headers(msg_id=MSG_ID, body=BODY, secrets=[])


def test_header_names_are_case_insensitive(secret: str) -> None:
    headers = webhook_headers(msg_id=MSG_ID, body=BODY, secrets=[secret])
    verify(secret, headers={k.title(): v for k, v in headers.items()}, body=BODY)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"webhook-id": "msg_other"}, "no v1 signature matches"),
        ({"webhook-timestamp": "{stamp_plus_one}"}, "no v1 signature matches"),
        ({"webhook-id": ""}, "missing webhook-id"),
        ({"webhook-signature": ""}, "missing"),
        ({"webhook-timestamp": "soon"}, "not a Unix time"),
        ({"webhook-timestamp": "-5"}, "not a Unix time"),
        ({"webhook-signature": "v1a,{signature}"}, "no v1 signature matches"),
        ({"webhook-signature": "v2,{signature} nonsense v1,***"}, "no v1 signature matches"),
    ],
)
def test_a_tampered_or_malformed_delivery_is_refused(
    secret: str, change: dict[str, str], reason: str
) -> None:
    headers = webhook_headers(msg_id=MSG_ID, body=BODY, secrets=[secret])
    values = {
        "stamp_plus_one": str(int(headers["webhook-timestamp"]) + 1),
        "signature": headers["webhook-signature"].partition(",")[2],
    }
    headers.update({name: value.format(**values) for name, value in change.items()})
    with pytest.raises(SignatureError, match=reason):
        verify(secret, headers=headers, body=BODY)


def test_a_changed_body_is_refused(secret: str) -> None:
    headers = webhook_headers(msg_id=MSG_ID, body=BODY, secrets=[secret])
    with pytest.raises(SignatureError, match="no v1 signature matches"):
        verify(secret, headers=headers, body=BODY + b" ")


def test_a_replay_outside_five_minutes_is_refused_both_ways(secret: str) -> None:
    headers = webhook_headers(msg_id=MSG_ID, body=BODY, secrets=[secret], timestamp=1_000_000)
    verify(secret, headers=headers, body=BODY, now=1_000_000 + 300)
    verify(secret, headers=headers, body=BODY, now=1_000_000 - 300)
    with pytest.raises(SignatureError, match="too old"):
        verify(secret, headers=headers, body=BODY, now=1_000_000 + 301)
    with pytest.raises(SignatureError, match="in the future"):
        verify(secret, headers=headers, body=BODY, now=1_000_000 - 301)
