"""Signed cursors open only for the list and the account they were issued for."""

from __future__ import annotations

import base64
import uuid

import pytest

from common.cursors import MAX_CURSOR_LENGTH, Cursors, InvalidCursor

ADA = uuid.UUID("00000000-0000-4000-8000-00000000000a")
BOB = uuid.UUID("00000000-0000-4000-8000-00000000000b")
CURSORS = Cursors("a-test-secret-that-is-long-enough-0123456789")


def _reason(cursor: str, *, kind: str = "sync", user: uuid.UUID = ADA) -> str:
    with pytest.raises(InvalidCursor) as caught:
        CURSORS.open(kind, user, cursor, parameter="since")
    assert caught.value.status == 400
    assert caught.value.extra["errors"][0]["loc"] == ["query", "since"]
    return caught.value.detail


def test_a_cursor_opens_to_its_position() -> None:
    cursor = CURSORS.sign("sync", ADA, {"s": 42})
    assert CURSORS.open("sync", ADA, cursor, parameter="since") == {"s": 42}
    assert "=" not in cursor and "+" not in cursor and "/" not in cursor


def test_every_altered_byte_is_refused() -> None:
    raw = base64.urlsafe_b64decode(CURSORS.sign("sync", ADA, {"s": 42}) + "==")
    for index in range(len(raw)):
        altered = bytearray(raw)
        altered[index] ^= 0x20
        encoded = base64.urlsafe_b64encode(bytes(altered)).decode().rstrip("=")
        assert "not issued" in _reason(encoded)


def test_another_accounts_or_another_lists_cursor_is_refused() -> None:
    assert "another account" in _reason(CURSORS.sign("sync", BOB, {"s": 1}))
    assert "does not belong" in _reason(CURSORS.sign("tasks", ADA, {"a": []}))


def test_another_servers_key_is_refused() -> None:
    other = Cursors("another-secret-that-is-long-enough-012345678")
    assert "not issued" in _reason(other.sign("sync", ADA, {"s": 1}))


@pytest.mark.parametrize("cursor", ["", "a", "%%%%", "x" * 40, "====", "é"])
def test_garbage_is_refused(cursor: str) -> None:
    _reason(cursor)


def test_an_overlong_cursor_is_refused_before_decoding() -> None:
    assert "too long" in _reason("A" * (MAX_CURSOR_LENGTH + 1))
