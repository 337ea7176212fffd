"""Settings given to the processes: every TASKPIPE_* name exists, values validate, secrets stay in
Secrets, the committed Secret is only a template, and per-process settings fit the deployment."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr, ValidationError

from .commands import runs_api, runs_flower
from .compose_file import COMPOSE_FILE, compose, taskpipe_compose_services
from .environment import (
    compose_env,
    container_env,
    settings_env_names,
    settings_from,
)
from .manifests import (
    K8S,
    K8S_BASE,
    ROOT,
    all_containers,
    app_kustomization_dirs,
    by_kind,
    container_argv,
    load_all,
    pod_spec,
    rendered,
)

ENV_EXAMPLE = ROOT / ".env.example"
KDIRS = app_kustomization_dirs()
KDIR_IDS = [str(d.relative_to(K8S)) for d in KDIRS]
PLACEHOLDER = "REPLACE_ME"
# Settings whose values carry credentials (URLs may embed a password) and so belong in a Secret.
URL_WITH_CREDENTIALS = {"database_url", "redis_url", "broker_url", "result_backend_url"}


def _sensitive_env_names() -> set[str]:
    from common.config import Settings

    names = set(URL_WITH_CREDENTIALS)
    for name, info in Settings.model_fields.items():
        if SecretStr in (info.annotation, *getattr(info.annotation, "__args__", ())):
            names.add(name)
    return {f"TASKPIPE_{n.upper()}" for n in names}


def _k8s_names() -> list[tuple[str, str]]:
    out = []
    for path in sorted(K8S.rglob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        for obj in load_all(path):
            where = f"{path.relative_to(K8S)} {obj['kind']}/{obj['metadata']['name']}"
            for key in (*obj.get("data", {}), *obj.get("stringData", {})):
                out.append((where, key))
            for c in all_containers(obj):
                out.extend((f"{where}/{c['name']}", e["name"]) for e in c.get("env", []))
    return out


def _compose_names() -> list[tuple[str, str]]:
    return [
        (f"compose {name}", key)
        for name, svc in compose()["services"].items()
        for key in compose_env(svc)
    ]


def _env_example_names() -> list[tuple[str, str]]:
    if not ENV_EXAMPLE.is_file():
        return []
    names = []
    for line in ENV_EXAMPLE.read_text().splitlines():
        match = re.match(r"\s*#?\s*(?:export\s+)?(TASKPIPE_[A-Z0-9_]+)\s*=", line)
        if match:
            names.append((".env.example", match.group(1)))
    return names


def test_every_taskpipe_variable_is_a_setting() -> None:
    known = settings_env_names()
    used = _k8s_names() + _compose_names() + _env_example_names()
    assert any(name.startswith("TASKPIPE_") for _, name in used)
    unknown = sorted(
        {f"{where}: {name}" for where, name in used if name.startswith("TASKPIPE_")}
        - {f"{where}: {name}" for where, name in used if name in known}
    )
    assert unknown == [], "not fields of common.config.Settings (typo, or a setting was renamed)"


@pytest.mark.parametrize("kdir", KDIRS, ids=KDIR_IDS)
def test_every_k8s_process_gets_valid_production_settings(kdir: Path) -> None:
    objects = rendered(kdir)
    for obj in objects:
        for c in all_containers(obj):
            env = container_env(c, objects)
            try:
                settings = settings_from(env)
            except ValidationError as exc:
                pytest.fail(f"{obj['metadata']['name']}/{c['name']}: {exc}")
            assert settings.is_production, f"{obj['metadata']['name']}: TASKPIPE_ENV=production"


def test_every_compose_service_gets_valid_development_settings() -> None:
    for name, svc in taskpipe_compose_services().items():
        settings = settings_from(compose_env(svc), fake_secrets=False)
        assert not settings.is_production, name


def test_secret_template_holds_placeholders_only() -> None:
    secrets = [o for p in sorted(K8S.rglob("*.yaml")) for o in load_all(p) if o["kind"] == "Secret"]
    assert secrets, "k8s/base carries a Secret template"
    for secret in secrets:
        name = secret["metadata"]["name"]
        assert "data" not in secret, (
            f"{name}: base64 `data` hides what is committed; use stringData"
        )
        values = secret.get("stringData", {})
        assert values
        for key, value in values.items():
            assert PLACEHOLDER in str(value), f"{name}.{key} must be a {PLACEHOLDER} placeholder"
            rest = str(value).replace(PLACEHOLDER, "")
            # What is left around a placeholder is structure (scheme, host, port), not a secret.
            for token in re.findall(r"[A-Za-z0-9+/=_\-]{20,}", rest):
                pytest.fail(f"{name}.{key} contains a long token {token[:6]}...: a real secret?")


def test_production_refuses_to_start_with_the_template() -> None:
    """Applying the template unedited fails loudly instead of running with known secrets."""
    objects = rendered(K8S_BASE)
    api = next(
        d
        for d in by_kind(objects, "Deployment")
        if runs_api(container_argv(pod_spec(d)["containers"][0]))
    )
    env = container_env(pod_spec(api)["containers"][0], objects)
    with pytest.raises(ValidationError, match="TASKPIPE_JWT_SECRET"):
        settings_from(env, fake_secrets=False)


def test_secret_template_covers_what_production_requires() -> None:
    keys = {k for s in by_kind(rendered(K8S_BASE), "Secret") for k in s.get("stringData", {})}
    required = {
        "TASKPIPE_JWT_SECRET",
        "TASKPIPE_FLOWER_PASSWORD",
        "TASKPIPE_DATABASE_URL",
        "TASKPIPE_REDIS_URL",
        "TASKPIPE_BROKER_URL",
        "TASKPIPE_SECURITY_REDIS_URL",
        "TASKPIPE_METRICS_TOKEN",
    }
    assert required <= keys


@pytest.mark.parametrize("kdir", KDIRS, ids=KDIR_IDS)
def test_sensitive_settings_are_never_plain_config(kdir: Path) -> None:
    sensitive = _sensitive_env_names()
    objects = rendered(kdir)
    for cm in by_kind(objects, "ConfigMap"):
        leaked = sensitive & set(cm.get("data", {}))
        assert not leaked, f"ConfigMap {cm['metadata']['name']} holds {sorted(leaked)}"
    for obj in objects:
        for c in all_containers(obj):
            for item in c.get("env", []):
                assert item["name"] not in sensitive or "valueFrom" in item, (
                    f"{obj['metadata']['name']}: {item['name']} as a literal env value"
                )


def _tmp_mounts(obj: dict[str, Any], c: dict[str, Any]) -> list[str]:
    volumes = {v["name"]: v for v in pod_spec(obj).get("volumes", [])}
    return [
        m["mountPath"]
        for m in c.get("volumeMounts", [])
        if "emptyDir" in volumes.get(m["name"], {}) and not m.get("readOnly")
    ]


def _under(path: str, roots: list[str]) -> bool:
    return any(path == r or path.startswith(r.rstrip("/") + "/") for r in roots)


@pytest.mark.parametrize("kdir", KDIRS, ids=KDIR_IDS)
def test_per_process_settings_fit_the_pod(kdir: Path) -> None:
    objects = rendered(kdir)
    for obj in objects:
        for c in all_containers(obj):
            argv = container_argv(c)
            env = container_env(c, objects)
            settings = settings_from(env)
            writable = _tmp_mounts(obj, c)
            where = f"{obj['metadata']['name']}/{c['name']}"
            if argv[:1] == ["celery"]:
                # Heartbeat files (liveness) and beat's schedule are written here.
                assert _under(settings.heartbeat_dir, writable), f"{where}: heartbeat_dir read-only"
            if runs_flower(argv):
                ports = {p["containerPort"] for p in c.get("ports", [])}
                assert settings.flower_port in ports, where
                assert settings.flower_address not in ("127.0.0.1", "localhost", "::1"), (
                    f"{where}: Flower on loopback is unreachable for probes and the Service"
                )
            if runs_api(argv):
                processes = int(env.get("WEB_CONCURRENCY", "1"))
                if processes > 1:
                    assert _under(env.get("PROMETHEUS_MULTIPROC_DIR", "-"), writable), (
                        f"{where}: several uvicorn processes need PROMETHEUS_MULTIPROC_DIR"
                    )


def test_compose_per_process_settings() -> None:
    for name, svc in taskpipe_compose_services().items():
        argv = [str(a) for a in svc.get("command", [])]
        env = compose_env(svc)
        settings = settings_from(env, fake_secrets=False)
        tmpfs = [str(t).split(":")[0] for t in svc.get("tmpfs", [])]
        if svc.get("read_only") and argv[:1] == ["celery"]:
            assert _under(settings.heartbeat_dir, tmpfs), f"compose {name}: heartbeat_dir"
        if runs_flower(argv):
            assert settings.flower_address not in ("127.0.0.1", "localhost", "::1"), name
            published = {int(str(p).rsplit(":", 1)[-1]) for p in svc.get("ports", [])}
            assert settings.flower_port in published, name
        if runs_api(argv) and int(env.get("WEB_CONCURRENCY", "1")) > 1:
            assert _under(env.get("PROMETHEUS_MULTIPROC_DIR", "-"), tmpfs), name


def test_compose_settings_point_at_the_compose_services() -> None:
    services = compose()["services"]
    pg_env = compose_env(services["postgres"])
    for name, svc in taskpipe_compose_services().items():
        settings = settings_from(compose_env(svc), fake_secrets=False)
        db = re.match(
            r"[^:]+://([^:@/]+)(?::([^@/]*))?@([^:/]+)(?::\d+)?/(\w+)", settings.database_url
        )
        assert db, f"compose {name}: database URL"
        user, password, host, database = db.groups()
        assert host in services, f"compose {name}: database host {host} is not a service"
        assert (user, password, database) == (
            pg_env["POSTGRES_USER"],
            pg_env["POSTGRES_PASSWORD"],
            pg_env["POSTGRES_DB"],
        ), f"compose {name}: credentials differ from the postgres service's"
        for url in (settings.redis_url, settings.celery_broker_url):
            host = re.sub(r"^[a-z]+://(?:[^@]*@)?([^:/]+).*$", r"\1", url)
            assert host in services, f"compose {name}: Redis host {host} is not a service"
        assert settings.smtp_host in services, f"compose {name}: SMTP host is not a service"
    assert COMPOSE_FILE.is_file()
