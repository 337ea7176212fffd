"""docker-compose.yml: the development stack starts in order, checks its own health, runs one beat.

The file is read and held to the rules Compose applies and the ones we add; `make compose-smoke`
(deploy/smoke.py) runs it for real on a Docker engine.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from common.jobs import Queue

from .compose_file import COMPOSE_FILE, compose, taskpipe_compose_services
from .environment import compose_env, resolve_compose_value
from .manifests import load_yaml
from .test_k8s import LONGEST_TASK_HARD_LIMIT

REQUIRED = {
    "postgres",
    "redis",
    "redis-cache",
    "migrate",
    "api",
    "worker",
    "beat",
    "flower",
    "mailpit",
}
ONE_SHOT = {"migrate"}
CONDITIONS = {"service_started", "service_healthy", "service_completed_successfully"}


def _services() -> dict[str, dict[str, Any]]:
    return compose()["services"]


def _seconds(value: str | int) -> float:
    if isinstance(value, int | float):
        return float(value)
    total = 0.0
    for number, unit in re.findall(r"(\d+(?:\.\d+)?)(ms|us|h|m|s)", value):
        total += float(number) * {"h": 3600, "m": 60, "s": 1, "ms": 1e-3, "us": 1e-6}[unit]
    return total


def test_compose_file_parses_and_has_every_service() -> None:
    data = load_yaml(COMPOSE_FILE)
    assert isinstance(data, dict)
    assert "version" not in data, "the top-level `version` is obsolete in Compose v2"
    assert set(data["services"]) >= REQUIRED
    for name, svc in data["services"].items():
        assert "image" in svc or "build" in svc, name


def test_taskpipe_services_share_one_image_built_here() -> None:
    services = taskpipe_compose_services()
    assert set(services) >= {"migrate", "api", "worker", "beat", "flower"}
    assert len({s["image"] for s in services.values()}) == 1
    for name, svc in services.items():
        assert svc["build"]["context"] == ".", name


def test_postgres_is_15_or_newer_with_a_named_volume() -> None:
    svc = _services()["postgres"]
    match = re.match(r"postgres:(\d+)", svc["image"])
    assert match, svc["image"]
    assert int(match.group(1)) >= 15, svc["image"]
    named = {str(v).split(":")[0] for v in svc.get("volumes", [])}
    declared = set(compose().get("volumes") or {})
    data_volumes = [v for v in svc["volumes"] if str(v).endswith(":/var/lib/postgresql/data")]
    assert data_volumes
    assert str(data_volumes[0]).split(":")[0] in declared & named


def test_long_running_services_have_healthchecks() -> None:
    for name, svc in _services().items():
        if name in ONE_SHOT:
            continue
        hc = svc.get("healthcheck")
        assert hc, f"{name} needs a healthcheck"
        assert not hc.get("disable"), f"{name} needs a healthcheck"
        assert hc["test"][0] in ("CMD", "CMD-SHELL"), name
        assert _seconds(hc.get("interval", "30s")) > 0
        assert hc.get("retries", 3) >= 1


@pytest.mark.parametrize(
    ("service", "needle"),
    [
        ("postgres", "pg_isready"),
        ("redis", "redis-cli ping"),
        ("redis-cache", "redis-cli ping"),
        ("mailpit", "readyz"),
    ],
)
def test_backing_services_use_their_own_readiness_tools(service: str, needle: str) -> None:
    test = " ".join(str(t) for t in _services()[service]["healthcheck"]["test"][1:])
    assert needle in test


def test_depends_on_uses_conditions_and_known_services() -> None:
    services = _services()
    for name, svc in services.items():
        deps = svc.get("depends_on", {})
        assert isinstance(deps, dict), f"{name}: long-form depends_on with conditions"
        for dep, spec in deps.items():
            assert dep in services, f"{name} depends on unknown {dep}"
            assert spec.get("condition") in CONDITIONS, f"{name} -> {dep}"
            if dep in ONE_SHOT:
                assert spec["condition"] == "service_completed_successfully", f"{name} -> {dep}"
            elif services[dep].get("healthcheck") and dep in ("postgres", "redis"):
                assert spec["condition"] == "service_healthy", f"{name} -> {dep}"


def test_startup_order() -> None:
    services = _services()
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in ("api", "worker", "beat"):
        deps = services[name]["depends_on"]
        assert deps["migrate"]["condition"] == "service_completed_successfully", name
        assert deps["redis"]["condition"] == "service_healthy", name
    assert services["api"]["depends_on"]["postgres"]["condition"] == "service_healthy"


def test_depends_on_has_no_cycle() -> None:
    services = _services()

    def visit(name: str, path: tuple[str, ...]) -> None:
        assert name not in path, f"depends_on cycle: {' -> '.join((*path, name))}"
        for dep in services[name].get("depends_on", {}):
            visit(dep, (*path, name))

    for name in services:
        visit(name, ())


def test_migrate_is_a_one_shot_alembic_upgrade() -> None:
    svc = _services()["migrate"]
    assert [str(a) for a in svc["command"]] == ["alembic", "upgrade", "head"]
    assert svc.get("restart", "no") in ("no", "on-failure")


def test_beat_runs_exactly_once() -> None:
    services = _services()
    beat = services["beat"]
    assert beat.get("deploy", {}).get("replicas", 1) == 1
    assert beat.get("scale", 1) == 1
    runs_beat = [
        name
        for name, svc in services.items()
        if "beat" in [str(a) for a in svc.get("command", [])]
        or {"-B", "--beat"} & {str(a) for a in svc.get("command", [])}
    ]
    assert runs_beat == ["beat"]


def test_worker_consumes_every_queue_and_stops_warm() -> None:
    worker = _services()["worker"]
    argv = [str(a) for a in worker["command"]]
    queues = set(argv[argv.index("--queues") + 1].split(","))
    assert queues == set(Queue.ALL)
    assert _seconds(worker.get("stop_grace_period", "10s")) > LONGEST_TASK_HARD_LIMIT


def test_published_ports() -> None:
    services = _services()

    def published(name: str) -> set[int]:
        # "[ip:]host:container" -> host port (its `${VAR:-default}` resolved to the default)
        return {
            int(resolve_compose_value(p).split(":")[-2]) for p in services[name].get("ports", [])
        }

    assert 8000 in published("api")
    assert 5555 in published("flower")
    assert 8025 in published("mailpit")
    for name in ("api", "flower", "mailpit"):
        for port in services[name]["ports"]:
            assert str(port).startswith("127.0.0.1:"), f"{name}: published on loopback only"
    for name in ("postgres", "redis", "redis-cache"):
        assert not services[name].get("ports"), f"{name} stays on the compose network"


def test_settings_come_from_an_optional_env_file() -> None:
    for name, svc in taskpipe_compose_services().items():
        files = svc.get("env_file", [])
        assert any(
            isinstance(f, dict) and f.get("path") == ".env" and f.get("required") is False
            for f in files
        ), f"{name}: env_file .env with required: false"


def test_taskpipe_containers_are_hardened_like_in_kubernetes() -> None:
    for name, svc in taskpipe_compose_services().items():
        assert svc.get("read_only") is True, name
        assert any(str(t).split(":")[0] == "/tmp" for t in svc.get("tmpfs", [])), name
        assert "ALL" in svc.get("cap_drop", []), name
        assert "no-new-privileges:true" in svc.get("security_opt", []), name


def _redis_flags(service: str) -> dict[str, str]:
    argv = [str(a) for a in _services()[service]["command"]]
    return {
        flag.removeprefix("--"): value for flag, value in zip(argv[1::2], argv[2::2], strict=True)
    }


def test_queues_and_security_state_are_never_evicted_the_cache_is() -> None:
    """docs/deploy.md "Redis memory policy": a full broker/security Redis refuses writes rather
    than dropping a queued job or a revocation; the cache Redis is bounded and evicts."""
    state, cache = _redis_flags("redis"), _redis_flags("redis-cache")
    assert state["maxmemory-policy"] == "noeviction"
    assert state["appendonly"] == "yes"
    assert cache["maxmemory-policy"] == "allkeys-lru"
    assert cache["maxmemory"]
    for name, svc in taskpipe_compose_services().items():
        env = compose_env(svc)
        assert env["TASKPIPE_REDIS_URL"].startswith("redis://redis-cache:"), name
        assert env["TASKPIPE_BROKER_URL"].startswith("redis://redis:"), name
        assert env["TASKPIPE_SECURITY_REDIS_URL"].startswith("redis://redis:"), name
        assert env["TASKPIPE_SECURITY_REDIS_URL"] != env["TASKPIPE_BROKER_URL"], name


def test_compose_runs_in_development_explicitly_with_a_metrics_token() -> None:
    """The image defaults to production; compose, with its published development secrets,
    says development itself (never taken from the shell) and sends /metrics a token."""
    for name, svc in taskpipe_compose_services().items():
        env = svc["environment"]
        assert env["TASKPIPE_ENV"] == "development", name
        assert compose_env(svc)["TASKPIPE_METRICS_TOKEN"], name
