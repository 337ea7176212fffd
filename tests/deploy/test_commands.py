"""Every command and probe of the Dockerfile, docker-compose.yml and k8s/ names real code.

A renamed module, app object, Celery app, route or queue makes the matching case below fail.
Modules these tests need from the app: `api.server` (serving `api.main:app`, with GET /health,
/ready, /metrics), `worker.app` (the Celery app), `worker.healthcheck`, `worker.flower`, and
alembic.ini + migrations/.
"""

from __future__ import annotations

from typing import Any

import pytest

from .commands import (
    Command,
    check_command,
    runs_api,
    runs_flower,
    server_of,
    server_serves,
)
from .compose_file import healthcheck_argv, published_container_ports, taskpipe_compose_services
from .dockerfile import dockerfile_stages, healthcheck_cmd, image_cmd
from .manifests import K8S, all_containers, app_kustomization_dirs, pod_spec, rendered


def dockerfile_commands() -> list[Command]:
    cmd = image_cmd()
    out = [Command("Dockerfile CMD", cmd)]
    for ins in dockerfile_stages()[-1]:
        if ins.keyword == "HEALTHCHECK":
            out.append(Command("Dockerfile HEALTHCHECK", healthcheck_cmd(ins.args), server_of(cmd)))
        if ins.keyword == "ENTRYPOINT":
            raise AssertionError("no ENTRYPOINT: each process's command is its whole argv")
    return out


def compose_commands() -> list[Command]:
    out = []
    for name, svc in taskpipe_compose_services().items():
        argv = [str(a) for a in svc["command"]] if "command" in svc else image_cmd()
        out.append(Command(f"compose {name} command", argv))
        hc = svc.get("healthcheck", {})
        if hc and not hc.get("disable"):
            out.append(
                Command(
                    f"compose {name} healthcheck", healthcheck_argv(hc["test"]), server_of(argv)
                )
            )
    return out


def _container_argv(c: dict[str, Any]) -> list[str]:
    if "command" not in c:  # the image has no ENTRYPOINT: args alone replace its CMD
        return [str(a) for a in c["args"]] if "args" in c else image_cmd()
    return [str(a) for a in c["command"] + c.get("args", [])]


def k8s_commands() -> list[Command]:
    out = []
    for kdir in app_kustomization_dirs():
        rel = kdir.relative_to(K8S)
        for obj in rendered(kdir):
            for c in all_containers(obj):
                where = f"k8s {rel} {obj['kind']}/{obj['metadata']['name']}/{c['name']}"
                argv = _container_argv(c)
                cmds = [Command(where, argv)]
                for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
                    if "exec" in c.get(probe, {}):
                        cmds.append(Command(f"{where} {probe}", c[probe]["exec"]["command"]))
                for hook in ("postStart", "preStop"):
                    handler = c.get("lifecycle", {}).get(hook, {})
                    if "exec" in handler:
                        cmds.append(Command(f"{where} {hook}", handler["exec"]["command"]))
                out.extend(cmds)
    return out


ALL_COMMANDS = dockerfile_commands() + compose_commands() + k8s_commands()


@pytest.mark.parametrize("cmd", ALL_COMMANDS, ids=[c.where for c in ALL_COMMANDS])
def test_command_resolves_to_real_code(cmd: Command) -> None:
    errors = check_command(cmd)
    assert not errors, "\n".join(errors)


def test_every_process_kind_is_deployed_everywhere() -> None:
    """api, worker, beat, flower and the migration run in compose and in every kustomization."""

    def kinds(cmds: list[Command]) -> set[str]:
        found = set()
        for c in cmds:
            argv = c.argv
            if runs_api(argv):
                found.add("api")
            elif argv[:1] == ["celery"] and "worker" in argv:
                found.add("worker")
            elif argv[:1] == ["celery"] and "beat" in argv:
                found.add("beat")
            elif runs_flower(argv):
                found.add("flower")
            elif argv[:3] == ["alembic", "upgrade", "head"]:
                found.add("migrate")
        return found

    expected = {"api", "worker", "beat", "flower", "migrate"}
    assert kinds(compose_commands()) == expected
    for kdir in app_kustomization_dirs():
        mine = [c for c in k8s_commands() if f" {kdir.relative_to(K8S)} " in c.where]
        assert kinds(mine) == expected, kdir


def _http_probes() -> list[tuple[str, dict[int, str], dict[str, int], str, Any]]:
    out = []
    for kdir in app_kustomization_dirs():
        rel = kdir.relative_to(K8S)
        for obj in rendered(kdir):
            spec = pod_spec(obj)
            if spec is None:
                continue
            for c in spec["containers"]:
                serves = server_of(_container_argv(c))
                ports = {p["name"]: p["containerPort"] for p in c.get("ports", []) if "name" in p}
                where = f"k8s {rel} {obj['metadata']['name']}/{c['name']}"
                for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
                    get = c.get(probe, {}).get("httpGet")
                    if get:
                        out.append((f"{where} {probe}", serves, ports, get["path"], get["port"]))
    return out


HTTP_PROBES = _http_probes()


@pytest.mark.parametrize(
    ("where", "serves", "ports", "path", "port"), HTTP_PROBES, ids=[p[0] for p in HTTP_PROBES]
)
def test_http_probe_hits_a_route_the_process_serves(
    where: str, serves: dict[int, str], ports: dict[str, int], path: str, port: Any
) -> None:
    number = ports[port] if isinstance(port, str) else port
    assert number in serves, f"{where}: nothing listens on {port}"
    assert server_serves(serves[number], path), f"{where}: {serves[number]} has no GET {path}"


def test_api_probes_are_health_and_ready() -> None:
    """Liveness is /health (process up), readiness is /ready (PostgreSQL and Redis reachable)."""
    api_probes = {
        (w.rsplit(" ", 1)[-1], path)
        for w, serves, _, path, _ in HTTP_PROBES
        if any(s.startswith("asgi:") for s in serves.values())
    }
    assert ("livenessProbe", "/health") in api_probes
    assert ("readinessProbe", "/ready") in api_probes
    assert ("startupProbe", "/health") in api_probes


def test_container_ports_match_the_server_ports() -> None:
    for kdir in app_kustomization_dirs():
        for obj in rendered(kdir):
            spec = pod_spec(obj)
            for c in spec["containers"] if spec else []:
                serves = server_of(_container_argv(c))
                declared = {p["containerPort"] for p in c.get("ports", [])}
                assert declared == set(serves), f"{obj['metadata']['name']}: {declared} {serves}"
    for name, svc in taskpipe_compose_services().items():
        argv = [str(a) for a in svc["command"]] if "command" in svc else image_cmd()
        published = published_container_ports(svc)
        assert published == set(server_of(argv)), f"compose {name}: publishes {published}"
