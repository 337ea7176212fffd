"""Server-side request forgery stays in one place: only webhook delivery makes HTTP requests.

The API and the worker otherwise connect only to the configured PostgreSQL, Redis and SMTP
servers. The one exception is `common/webhooks/delivery.py`, which calls URLs our users chose
and therefore goes through the SSRF guard (`common/webhooks/targets.py`) on every attempt.
Adding an HTTP client anywhere else is a decision to make here, with an allow-list entry, not
by accident.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HTTP_CLIENTS = {"httpx", "requests", "aiohttp", "urllib.request", "http.client", "pycurl"}
APPLICATION = ("api", "common", "worker")
ALLOWED = {"common/webhooks/delivery.py": ["httpx"]}


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


def test_only_webhook_delivery_imports_an_http_client() -> None:
    importing = {
        str(path.relative_to(ROOT)): sorted(
            name
            for name in _imports(path)
            if any(name == client or name.startswith(client + ".") for client in HTTP_CLIENTS)
        )
        for package in APPLICATION
        for path in (ROOT / package).rglob("*.py")
    }
    assert {path: names for path, names in importing.items() if names} == ALLOWED
