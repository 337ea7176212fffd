"""No server-side request forgery is possible: the API and the worker fetch no URLs at all.

Their only outbound connections go to the configured PostgreSQL, Redis and SMTP servers; no
client-supplied URL or host is ever connected to. This test keeps it that way: adding an HTTP
client to the application code is a decision to make with an allow-list, not by accident.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HTTP_CLIENTS = {"httpx", "requests", "aiohttp", "urllib.request", "http.client", "pycurl"}
APPLICATION = ("api", "common", "worker")


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


def test_the_application_imports_no_http_client() -> None:
    offending = {
        str(path.relative_to(ROOT)): sorted(
            name
            for name in _imports(path)
            if any(name == client or name.startswith(client + ".") for client in HTTP_CLIENTS)
        )
        for package in APPLICATION
        for path in (ROOT / package).rglob("*.py")
    }
    assert {path: names for path, names in offending.items() if names} == {}
