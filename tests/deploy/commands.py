"""Every command the deployment runs, and whether the code it names is really there.

A command knows where it was found (for messages) and which HTTP servers the process it
checks runs, so a healthcheck's URL can be matched against that server's routes.
"""

from __future__ import annotations

import configparser
import importlib
import importlib.util
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .manifests import ROOT

API_PORT = 8000
FLOWER_PORT = 5555
API_MODULE = "api.server"
API_APP = "api.main:app"  # what api.server serves


@dataclass
class Command:
    """One command line the deployment runs, with where it was found (for messages)."""

    where: str
    argv: list[str]
    # HTTP servers the process that this command checks/serves runs: port -> server kind
    serves: dict[int, str] = field(default_factory=dict)


def runs_api(argv: list[str]) -> bool:
    return argv[:3] == ["python", "-m", API_MODULE]


def runs_flower(argv: list[str]) -> bool:
    return argv[:3] == ["python", "-m", "worker.flower"]


def server_of(argv: list[str]) -> dict[int, str]:
    """Which HTTP server (and on which port) a long-running command starts."""
    if runs_api(argv):
        port = int(argv[argv.index("--port") + 1]) if "--port" in argv else API_PORT
        return {port: f"asgi:{API_APP}"}
    if runs_flower(argv):
        return {FLOWER_PORT: "flower"}
    return {}


@cache
def asgi_app(target: str) -> Any:
    module_name, _, attr = target.partition(":")
    obj: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


def asgi_serves(target: str, path: str) -> bool:
    """Whether the ASGI app `module:attr` answers GET `path` with one of its own routes."""
    from starlette.routing import Match

    scope = {"type": "http", "path": path, "method": "GET", "root_path": ""}
    return any(route.matches(scope)[0] == Match.FULL for route in asgi_app(target).routes)


def flower_serves(path: str) -> bool:
    from flower.urls import handlers

    patterns = [h.regex.pattern if hasattr(h, "regex") else h[0] for h in handlers]
    return any(re.fullmatch(p.rstrip("$"), path) for p in patterns)


def server_serves(server: str, path: str) -> bool:
    if server.startswith("asgi:"):
        return asgi_serves(server.removeprefix("asgi:"), path)
    if server == "flower":
        return flower_serves(path)
    raise AssertionError(f"unknown server {server}")


def urls_in(code: str) -> list[tuple[int, str]]:
    """(port, path) of every http URL literal in a `python -c` snippet."""
    found = []
    for url in re.findall(r"https?://[^\s'\"]+", code):
        parts = urlsplit(url)
        found.append(((parts.port or 80), (parts.path or "/")))
    return found


def check_command(cmd: Command) -> list[str]:
    """Why a command would not start/answer with the code as it is ([] when it resolves)."""
    argv = cmd.argv
    if not argv:
        return [f"{cmd.where}: empty command"]
    prog = Path(argv[0]).name
    if prog == "celery":
        return _check_celery(cmd)
    if prog == "alembic":
        return _check_alembic(cmd)
    if prog == "sleep":
        ok = len(argv) == 2 and argv[1].isdigit()
        return [] if ok else [f"{cmd.where}: sleep takes one number of seconds"]
    if prog not in ("python", "python3"):
        return [f"{cmd.where}: unknown program {argv[0]!r}; teach tests/deploy about it"]
    if len(argv) >= 3 and argv[1] == "-m":
        return _check_module(cmd)
    if len(argv) >= 3 and argv[1] == "-c":
        return _check_snippet(cmd)
    return [f"{cmd.where}: python without -m/-c: {argv}"]


def _check_module(cmd: Command) -> list[str]:
    module = cmd.argv[2]
    if importlib.util.find_spec(module.split(".")[0]) is None:
        return [f"{cmd.where}: package of module {module} not found"]
    if importlib.util.find_spec(module) is None:
        return [f"{cmd.where}: module {module} not found (python -m)"]
    if module == API_MODULE:
        from api.server import build_parser

        try:
            build_parser().parse_args(cmd.argv[3:])
        except SystemExit:
            return [f"{cmd.where}: python -m api.server refuses {cmd.argv[3:]}"]
        if not callable(asgi_app(API_APP)):
            return [f"{cmd.where}: {API_APP} is not an ASGI callable"]
    return []


def _check_snippet(cmd: Command) -> list[str]:
    code = cmd.argv[2]
    try:
        compile(code, cmd.where, "exec")
    except SyntaxError as exc:
        return [f"{cmd.where}: python -c code does not compile: {exc}"]
    errors = []
    for port, path in urls_in(code):
        server = cmd.serves.get(port)
        if server is None:
            errors.append(f"{cmd.where}: checks port {port}, where nothing of ours listens")
        elif not server_serves(server, path):
            errors.append(f"{cmd.where}: {server} serves no GET {path}")
    return errors


CELERY_SUBCOMMANDS = {"worker", "beat", "flower", "inspect", "events", "status", "call", "purge"}


def _celery_app_name(argv: list[str]) -> str | None:
    for i, arg in enumerate(argv):
        if arg in ("-A", "--app") and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--app="):
            return arg.split("=", 1)[1]
        if arg.startswith("-A") and len(arg) > 2:
            return arg[2:].lstrip("=")
    return None


def load_celery_app(name: str) -> Any:
    """What `celery -A name` loads: `module:attr`, `module.attr`, or a module's app/celery."""
    from celery import Celery

    module_name, _, attr = name.partition(":")
    try:
        module: Any = importlib.import_module(module_name)
    except ImportError:
        module_name, _, attr = name.rpartition(".")
        module = importlib.import_module(module_name)
    if attr:
        candidate = getattr(module, attr)
        if isinstance(candidate, Celery):
            return candidate
        module = candidate
    for attr_name in ("app", "celery"):
        candidate = getattr(module, attr_name, None)
        if isinstance(candidate, Celery):
            return candidate
    found = [v for v in vars(module).values() if isinstance(v, Celery)]
    if len(found) == 1:
        return found[0]
    raise AttributeError(f"no Celery app in {name}")


def _check_celery(cmd: Command) -> list[str]:
    argv = cmd.argv
    name = _celery_app_name(argv)
    if not name:
        return [f"{cmd.where}: celery without -A/--app"]
    try:
        app = load_celery_app(name)
    except (ImportError, AttributeError) as exc:
        return [f"{cmd.where}: celery app {name} does not resolve: {exc!r}"]
    sub = [a for a in argv[1:] if a in CELERY_SUBCOMMANDS]
    if not sub:
        return [f"{cmd.where}: celery without a known subcommand"]
    if sub[0] == "worker" and ("-Q" in argv or "--queues" in argv):
        flag = "-Q" if "-Q" in argv else "--queues"
        wanted = set(argv[argv.index(flag) + 1].split(","))
        known = {q.name for q in (app.conf.task_queues or [])}
        known |= {
            r.get("queue")
            for r in (app.conf.task_routes or {}).values()
            if isinstance(r, dict) and r.get("queue")
        }
        if known and not wanted <= known:
            return [f"{cmd.where}: worker consumes queues {sorted(wanted - known)} never routed"]
    return []


def _check_alembic(cmd: Command) -> list[str]:
    ini = ROOT / "alembic.ini"
    if "-c" in cmd.argv or "--config" in cmd.argv:
        flag = "-c" if "-c" in cmd.argv else "--config"
        ini = ROOT / cmd.argv[cmd.argv.index(flag) + 1]
    if not ini.is_file():
        return [f"{cmd.where}: {ini.name} not found at the repository root (the image's workdir)"]
    parser = configparser.ConfigParser(defaults={"here": str(ini.parent)})
    parser.read(ini)
    location = parser.get("alembic", "script_location", fallback=None)
    if not location:
        return [f"{cmd.where}: {ini.name} has no script_location"]
    if not ((ROOT / location).resolve() / "env.py").is_file():
        return [f"{cmd.where}: {location} has no env.py"]
    if cmd.argv[1:3] != ["upgrade", "head"]:
        return [f"{cmd.where}: migrations must run `alembic upgrade head`, got {cmd.argv[1:]}"]
    return []
