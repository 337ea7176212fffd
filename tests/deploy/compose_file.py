"""docker-compose.yml, parsed."""

from __future__ import annotations

import shlex
from typing import Any

from .manifests import ROOT, load_yaml

COMPOSE_FILE = ROOT / "docker-compose.yml"


def compose() -> dict[str, Any]:
    data: dict[str, Any] = load_yaml(COMPOSE_FILE)
    return data


def taskpipe_compose_services() -> dict[str, dict[str, Any]]:
    """Compose services that run the Taskpipe image (built from this repo's Dockerfile)."""
    return {
        name: svc
        for name, svc in compose()["services"].items()
        if "build" in svc or str(svc.get("image", "")).startswith("taskpipe")
    }


def healthcheck_argv(test: str | list[str]) -> list[str]:
    """A compose/Docker healthcheck `test` as an argv (CMD, CMD-SHELL, or a plain string)."""
    if isinstance(test, str):
        return shlex.split(test)
    if test[0] == "CMD":
        return [str(t) for t in test[1:]]
    if test[0] == "CMD-SHELL":
        return shlex.split(test[1])
    raise ValueError(f"unexpected healthcheck test {test!r}")


def published_container_ports(service: dict[str, Any]) -> set[int]:
    """Container ports a service publishes ("[ip:]host:container")."""
    return {int(str(p).rsplit(":", 1)[-1]) for p in service.get("ports", [])}
