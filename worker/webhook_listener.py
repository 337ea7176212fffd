"""`taskpipe webhooks listen`: a receiver for development that verifies and prints deliveries.

Point a webhook at it (`http://127.0.0.1:8001/` while `make run` allows http and loopback
targets), pass the webhook's secret, and every event shows up in the terminal with its
`webhook-id` and whether its signature verifies. A delivery that does not verify is answered
401, so the webhook's deliveries log shows the failure too.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TextIO

from common.webhooks.signing import SignatureError, secret_key, verify

MAX_BODY_BYTES = 1024 * 1024


class WebhookListener(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self, host: str, port: int, *, secret: str | None, out: TextIO = sys.stdout
    ) -> None:
        if secret is not None:
            secret_key(secret)  # ValueError now, not at the first delivery
        self.secret = secret
        self.out = out
        super().__init__((host, port), _Handler)

    def report(self, headers: dict[str, str], body: bytes) -> int:
        """Print one delivery; the status to answer."""
        status, verdict = 200, "not verified (no --secret given)"
        if self.secret is not None:
            try:
                verify(self.secret, headers=headers, body=body)
                verdict = "signature verified"
            except SignatureError as exc:
                status, verdict = 401, f"SIGNATURE REJECTED: {exc}"
        try:
            event: Any = json.loads(body)
            summary, shown = event.get("type", "?"), json.dumps(event.get("data"), indent=2)
        except (ValueError, AttributeError):
            summary, shown = "(not a JSON event)", body[:500].decode("utf-8", "replace")
        stamp = datetime.now(UTC).strftime("%H:%M:%S")
        print(
            f"{stamp} {summary} {headers.get('webhook-id', '-')}: {verdict}\n{shown}\n",
            file=self.out,
            flush=True,
        )
        return status


class _Handler(BaseHTTPRequestHandler):
    server: WebhookListener

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        if not 0 <= length <= MAX_BODY_BYTES:
            self.send_error(413)
            return
        body = self.rfile.read(length)
        headers = {name.lower(): value for name, value in self.headers.items()}
        self.send_response(self.server.report(headers, body))
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: `report` prints what matters."""


def listen(host: str, port: int, secret: str | None) -> int:
    server = WebhookListener(host, port, secret=secret)
    print(f"listening on http://{host}:{port}/ (Ctrl-C stops)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0
