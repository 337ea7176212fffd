"""A real SMTP server (aiosmtpd) in the test process that keeps what it receives."""

from __future__ import annotations

import asyncio
import email
import threading
import time
from email.message import Message
from typing import Any

from aiosmtpd.controller import Controller


class MailCatcher:
    """aiosmtpd handler; `fail_next` makes the server refuse that many deliveries (451)."""

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.fail_next = 0
        self.delay_seconds = 0.0
        self.deliveries_started = 0
        self._lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self._lock:
            self.deliveries_started += 1
        if self.delay_seconds:
            await asyncio.sleep(self.delay_seconds)
        with self._lock:
            if self.fail_next > 0:
                self.fail_next -= 1
                return "451 Temporary failure, try again"
            self.messages.append(email.message_from_bytes(envelope.original_content))
        return "250 OK"

    def clear(self) -> None:
        with self._lock:
            self.messages.clear()
            self.fail_next = 0
            self.delay_seconds = 0.0
            self.deliveries_started = 0

    def to(self, address: str) -> list[Message]:
        with self._lock:
            return [m for m in self.messages if m["To"] == address]

    def wait_for(self, address: str, count: int = 1, timeout: float = 20.0) -> list[Message]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.to(address)
            if len(found) >= count:
                return found
            time.sleep(0.05)
        raise AssertionError(f"expected {count} mail(s) to {address}, got {len(self.to(address))}")


class SMTPServer:
    def __init__(self, port: int) -> None:
        self.catcher = MailCatcher()
        self.port = port
        self._controller = Controller(self.catcher, hostname="127.0.0.1", port=self.port)

    def start(self) -> None:
        self._controller.start()

    def stop(self) -> None:
        self._controller.stop()


def text_part(message: Message) -> str:
    for part in message.walk():
        if part.get_content_type() == "text/plain":
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            return payload.decode()
    raise AssertionError("no text/plain part")


def html_part(message: Message) -> str:
    for part in message.walk():
        if part.get_content_type() == "text/html":
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            return payload.decode()
    raise AssertionError("no text/html part")
