"""The settings each process gets: its environment as compose or Kubernetes builds it, and the
Settings the app would make of it."""

from __future__ import annotations

import re
from typing import Any

from .manifests import K8S_BASE, rendered

# Stand-ins for real secrets, so that production validation can run on the rest of the config.
REAL_LOOKING_JWT = "x" * 48
REAL_LOOKING_PASSWORD = "not-the-development-password"
REAL_LOOKING_TOKEN = "t" * 32


def settings_env_names() -> set[str]:
    from common.config import Settings

    return {f"TASKPIPE_{name.upper()}" for name in Settings.model_fields}


def resolve_compose_value(value: Any) -> str:
    """`${VAR:-default}` / `${VAR-default}` -> default (no shell environment, no .env)."""
    text = str(value)
    return re.sub(r"\$\{[A-Za-z_][A-Za-z0-9_]*(?::?-([^}]*))?\}", lambda m: m.group(1) or "", text)


def container_env(container: dict[str, Any], objects: Any) -> dict[str, str]:
    """The environment a container starts with: envFrom ConfigMaps/Secrets, then env."""
    config_maps = {o["metadata"]["name"]: o for o in objects if o["kind"] == "ConfigMap"}
    secrets = {o["metadata"]["name"]: o for o in objects if o["kind"] == "Secret"}
    if not secrets:  # an overlay that dropped the template: the base's keys stand in
        secrets = {o["metadata"]["name"]: o for o in rendered(K8S_BASE) if o["kind"] == "Secret"}
    env: dict[str, str] = {}
    for src in container.get("envFrom", []):
        if "configMapRef" in src:
            env.update(config_maps[src["configMapRef"]["name"]].get("data", {}))
        if "secretRef" in src:
            env.update(secrets[src["secretRef"]["name"]].get("stringData", {}))
    for item in container.get("env", []):
        if "value" in item:
            env[item["name"]] = str(item["value"])
    return env


def compose_env(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: resolve_compose_value(v) for k, v in env.items()}


def settings_from(env: dict[str, str], *, fake_secrets: bool = True) -> Any:
    """Settings built from exactly `env` (no process environment, no .env file)."""
    from common.config import Settings

    class Isolated(Settings):
        @classmethod
        def settings_customise_sources(cls, settings_cls, init_settings, *_: Any, **__: Any):  # type: ignore[no-untyped-def, override]
            return (init_settings,)

    fields = Settings.model_fields
    values: dict[str, Any] = {
        key.removeprefix("TASKPIPE_").lower(): value
        for key, value in env.items()
        if key.startswith("TASKPIPE_") and key.removeprefix("TASKPIPE_").lower() in fields
    }
    if fake_secrets:
        values["jwt_secret"] = REAL_LOOKING_JWT
        values["flower_password"] = REAL_LOOKING_PASSWORD
        if "metrics_token" in values:
            values["metrics_token"] = REAL_LOOKING_TOKEN
    return Isolated(**values)
