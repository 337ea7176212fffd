"""A Docker engine with Compose v2, and one compose project driven through the docker CLI.

Where no engine answers, the workplace's shared start script (`shared/tools/docker-local/start`
beside the repository) installs and starts one with local stand-ins for the registry images; the
Compose plugin it installs is found through its DOCKER_CONFIG.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DOCKER_LOCAL_DIR = Path(os.environ.get("DOCKER_LOCAL_DIR", "/var/tmp/docker-local"))
START_SCRIPT_CANDIDATES = tuple(
    Path(candidate)
    for candidate in (
        os.environ.get("TASKPIPE_DOCKER_START", ""),  # an explicit script wins
        ROOT.parent / "shared/tools/docker-local/start",  # CI: shared/ beside the clone
        ROOT.parents[1] / "shared/tools/docker-local/start",  # a worktree under wt/
        "/work/shared/tools/docker-local/start",  # our machines' workplace
    )
    if candidate
)


class SmokeFailure(Exception):
    """The stack or the scenario did not do what it must; the message says what."""


def _answers(argv: Sequence[str], env: dict[str, str]) -> bool:
    try:
        done = subprocess.run(argv, env=env, capture_output=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def _engine_ready(env: dict[str, str]) -> bool:
    return _answers(["docker", "info"], env) and _answers(["docker", "compose", "version"], env)


def docker_environment() -> dict[str, str]:
    """The environment under which `docker` and `docker compose` work, starting an engine with
    the shared script when none answers."""
    env = dict(os.environ)
    if _engine_ready(env):
        return env
    local = {**env, "DOCKER_CONFIG": str(DOCKER_LOCAL_DIR / "cfg")}
    if _engine_ready(local):
        return local
    script = next((p for p in START_SCRIPT_CANDIDATES if p.is_file()), None)
    if script is None:
        raise SmokeFailure(
            "no Docker engine answers `docker info` (with Compose v2), and no "
            "shared/tools/docker-local/start beside the repository to start one"
        )
    print(f"compose-smoke: no Docker engine answers; starting one with {script}", flush=True)
    subprocess.run(["bash", str(script)], env=env, check=True, timeout=900)
    if not _engine_ready(local):
        raise SmokeFailure(f"{script} ran, but `docker info` / `docker compose` still fail")
    return local


@dataclass
class ComposeProject:
    """`docker compose -p NAME` in the repository, with the variables the compose file reads."""

    name: str
    env: dict[str, str]
    timings: dict[str, float] = field(default_factory=dict)

    def argv(self, *args: str) -> list[str]:
        return ["docker", "compose", "--project-directory", str(ROOT), "-p", self.name, *args]

    def run(self, *args: str, timeout: float = 600, step: str | None = None) -> str:
        """Run a compose command; its output is returned, and shown when it fails."""
        started = time.monotonic()
        done = subprocess.run(
            self.argv(*args),
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if step:
            self.timings[step] = time.monotonic() - started
        if done.returncode != 0:
            raise SmokeFailure(
                f"`docker compose {' '.join(args)}` exited {done.returncode}:\n"
                f"{done.stdout[-3000:]}{done.stderr[-3000:]}"
            )
        return done.stdout

    def config(self) -> dict[str, Any]:
        """The resolved compose file (interpolation and env_file applied), as Compose sees it."""
        parsed: dict[str, Any] = json.loads(self.run("config", "--format", "json"))
        return parsed

    def service_env(self, service: str) -> dict[str, str]:
        env = self.config()["services"][service].get("environment") or {}
        return {key: str(value) for key, value in env.items() if value is not None}

    def logs(self, *services: str) -> str:
        return self.run("logs", "--no-color", "--no-log-prefix", *services)

    def container_state(self, service: str) -> dict[str, Any]:
        container_id = self.run("ps", "--all", "-q", service).strip()
        if not container_id:
            raise SmokeFailure(f"no container for service {service}")
        done = subprocess.run(
            ["docker", "inspect", container_id],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        state: dict[str, Any] = json.loads(done.stdout)[0]["State"]
        return state

    def down(self) -> None:
        """Remove the containers, the network and the volumes (best effort, never raises)."""
        subprocess.run(
            self.argv("down", "--volumes", "--remove-orphans", "--timeout", "30"),
            env=self.env,
            capture_output=True,
            timeout=300,
            check=False,
        )
