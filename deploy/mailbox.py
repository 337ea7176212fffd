"""The compose stack's mail catcher, read the way a person would read their inbox.

Mailpit (the image docker-compose.yml names) keeps every mail and serves it over its HTTP API on
8025. The local stand-in used where no registry is reachable is an SMTP sink that prints each
message to its log instead; both give the raw messages, parsed here with the standard library.
"""

from __future__ import annotations

import email
import email.policy
import re
import time
from collections.abc import Callable
from email.message import EmailMessage

import httpx

from deploy.engine import SmokeFailure

MESSAGE_START = "---------- MESSAGE FOLLOWS ----------"
MESSAGE_END = "------------ END MESSAGE ------------"
ENVELOPE_LINE = re.compile(r"^(mail|rcpt) options: ")


def parse(raw: str) -> EmailMessage:
    message = email.message_from_string(raw, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def from_sink_log(log: str) -> list[EmailMessage]:
    """The messages an aiosmtpd `Debugging` sink printed (between its marker lines)."""
    messages = []
    for block in log.split(MESSAGE_START)[1:]:
        body = block.split(MESSAGE_END, 1)[0]
        lines = [line for line in body.strip("\n").splitlines() if not ENVELOPE_LINE.match(line)]
        messages.append(parse("\n".join(lines).lstrip("\n")))
    return messages


def from_mailpit(http: httpx.Client) -> list[EmailMessage] | None:
    """Every message through Mailpit's API; None when 8025 is not Mailpit's API (the stand-in)."""
    listing = http.get("/api/v1/messages", params={"limit": 500})
    if listing.status_code != 200 or "json" not in listing.headers.get("content-type", ""):
        return None
    return [
        parse(http.get(f"/api/v1/message/{summary['ID']}/raw").text)
        for summary in listing.json()["messages"]
    ]


def text_of(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    if part is None:
        raise SmokeFailure(f"mail {message['Subject']!r} has no text/plain part")
    return str(part.get_content())


class Mailbox:
    """All mails the stack's catcher received, from its API or, failing that, its log."""

    def __init__(self, http: httpx.Client, sink_log: Callable[[], str]) -> None:
        self._http = http
        self._sink_log = sink_log
        self._has_api = True  # until the first answer says otherwise

    def messages(self) -> list[EmailMessage]:
        if self._has_api:
            via_api = from_mailpit(self._http)
            if via_api is not None:
                return via_api
            self._has_api = False
        return from_sink_log(self._sink_log())

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.messages() if address in str(m["To"])]

    def wait_for(self, address: str, *, timeout: float = 60.0) -> EmailMessage:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.to(address)
            if found:
                return found[0]
            time.sleep(0.5)
        raise SmokeFailure(f"no mail to {address} within {timeout:.0f} s")


def verification_link(message: EmailMessage) -> str:
    for word in text_of(message).split():
        if "/verify-email?token=" in word:
            return word
    raise SmokeFailure(f"no verification link in mail {message['Subject']!r}")
