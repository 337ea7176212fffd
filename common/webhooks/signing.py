"""Standard Webhooks signatures (https://www.standardwebhooks.com, specification 1.0.0).

A receiver can verify our deliveries with any Standard Webhooks library: the secret is
`whsec_` + base64 of random bytes (24 to 64; we make 32), the signed content is
`{webhook-id}.{webhook-timestamp}.{body}`, the signature HMAC-SHA256 as `v1,<base64>`. During a
secret rotation the old and the new secret both sign, space-separated in one header, so a
receiver holding either one keeps verifying.

The message id must be stable across retries (receivers de-duplicate on it) and, as the
specification asks, contain no `.`; the timestamp is the attempt's, so a retry is signed anew.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets as random
import time
from collections.abc import Mapping, Sequence
from datetime import timedelta

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32
SECRET_BYTES_RANGE = range(24, 65)
SIGNATURE_VERSION = "v1"
# The specification's own tolerance, and its reference implementation's.
TOLERANCE = timedelta(minutes=5)
_MESSAGE_ID = re.compile(r"[A-Za-z0-9_\-]{1,255}")
_TIMESTAMP = re.compile(r"\d{1,12}")


class SignatureError(Exception):
    """A delivery failed verification; the message says why (for the receiver's log)."""


def generate_secret() -> str:
    """A new signing secret, shown to the endpoint's owner once and stored for signing."""
    return SECRET_PREFIX + base64.b64encode(random.token_bytes(SECRET_BYTES)).decode("ascii")


def secret_key(secret: str) -> bytes:
    """The HMAC key in a `whsec_` secret; ValueError if it is not one."""
    encoded = secret.removeprefix(SECRET_PREFIX)
    if encoded == secret:
        raise ValueError(f"a signing secret starts with {SECRET_PREFIX!r}")
    try:
        key = base64.b64decode(encoded, validate=True)
    except binascii.Error:
        raise ValueError("a signing secret is base64 after its prefix") from None
    if len(key) not in SECRET_BYTES_RANGE:
        raise ValueError("a signing secret holds 24 to 64 bytes")
    return key


def _digest(key: bytes, msg_id: str, timestamp: int, body: bytes) -> bytes:
    signed = f"{msg_id}.{timestamp}.".encode() + body
    return hmac.new(key, signed, hashlib.sha256).digest()


def sign(secret: str, *, msg_id: str, timestamp: int, body: bytes) -> str:
    """One `v1,<base64>` signature of the exact body bytes that will be sent."""
    if not _MESSAGE_ID.fullmatch(msg_id):
        raise ValueError("a message id is 1-255 of [A-Za-z0-9_-] (never a '.')")
    digest = _digest(secret_key(secret), msg_id, timestamp, body)
    return f"{SIGNATURE_VERSION},{base64.b64encode(digest).decode('ascii')}"


def webhook_headers(
    *, msg_id: str, body: bytes, secrets: Sequence[str], timestamp: int | None = None
) -> dict[str, str]:
    """The three Standard Webhooks headers for one attempt, signed with every given secret.

    Pass the current secret, and during a rotation the previous one too.
    """
    if not secrets:
        raise ValueError("at least one secret signs a webhook")
    attempt = int(time.time()) if timestamp is None else timestamp
    signatures = [sign(s, msg_id=msg_id, timestamp=attempt, body=body) for s in secrets]
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(attempt),
        "webhook-signature": " ".join(signatures),
    }


def verify(
    secret: str,
    *,
    headers: Mapping[str, str],
    body: bytes,
    now: float | None = None,
    tolerance: timedelta = TOLERANCE,
) -> None:
    """Raise SignatureError unless a `v1` signature by `secret` matches, in time.

    The timestamp window (both ways) stops replays of a captured delivery; the comparison is
    constant-time so the check cannot be used as a signing oracle.
    """
    lowered = {name.lower(): value for name, value in headers.items()}
    msg_id = lowered.get("webhook-id", "")
    stamp = lowered.get("webhook-timestamp", "")
    signatures = lowered.get("webhook-signature", "")
    if not (msg_id and stamp and signatures):
        raise SignatureError("missing webhook-id, webhook-timestamp or webhook-signature")
    if not _TIMESTAMP.fullmatch(stamp):
        raise SignatureError("webhook-timestamp is not a Unix time in seconds")
    skew = (time.time() if now is None else now) - int(stamp)
    if abs(skew) > tolerance.total_seconds():
        raise SignatureError(f"webhook-timestamp is {'too old' if skew > 0 else 'in the future'}")
    expected = _digest(secret_key(secret), msg_id, int(stamp), body)
    for entry in signatures.split():
        version, _, encoded = entry.partition(",")
        if version != SIGNATURE_VERSION:
            continue
        try:
            candidate = base64.b64decode(encoded, validate=True)
        except binascii.Error:
            continue
        if hmac.compare_digest(candidate, expected):
            return
    raise SignatureError("no v1 signature matches")
