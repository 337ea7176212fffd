"""Development mail catcher for `make run`: an SMTP server on 127.0.0.1:1025 that prints mails.

Prints the headers that matter and the decoded plain-text part, so a newcomer can click the
verification link straight from the terminal. Never used in production (use a real relay).
"""

from __future__ import annotations

import argparse
import asyncio
import email
import email.policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller


def describe(raw: bytes) -> str:
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    body = message.get_body(preferencelist=("plain", "html"))
    text = body.get_content() if body is not None else ""
    rule = "-" * 72
    return (
        f"{rule}\nFrom: {message['From']}\nTo: {message['To']}\n"
        f"Subject: {message['Subject']}\n\n{text.rstrip()}\n{rule}"
    )


class PrintingHandler:
    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        print(describe(envelope.original_content), flush=True)
        return "250 Message accepted for delivery"


def main() -> None:  # pragma: no cover - runs until interrupted
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=1025)
    args = parser.parse_args()
    controller = Controller(PrintingHandler(), hostname=args.host, port=args.port)
    controller.start()
    print(f"devmail: catching mail on {args.host}:{args.port}", flush=True)
    try:
        asyncio.run(asyncio.Event().wait())
    except KeyboardInterrupt:
        pass
    finally:
        controller.stop()


if __name__ == "__main__":  # pragma: no cover
    main()
