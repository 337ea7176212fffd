"""k8s/monitoring as its consumers read it: the alert rules, the dashboard, and promtool."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

from .manifests import K8S_MONITORING, by_kind, rendered

DASHBOARD = K8S_MONITORING / "taskpipe-dashboard.json"
METRIC_NAME = re.compile(r"\btaskpipe_[a-z0-9_]+\b")


@cache
def promtool() -> str:
    """promtool from PATH; where it is missing and this runs as root with apt-get (our machines
    and CI), Debian's `prometheus` package is installed for it, as the shared Docker script
    installs the engine. Elsewhere: install it (it ships with every Prometheus release)."""
    found = shutil.which("promtool")
    if found:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        for argv in (
            ["apt-get", "update", "-qq"],
            ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "prometheus"],
        ):
            subprocess.run(argv, env=env, capture_output=True, timeout=600, check=True)
        found = shutil.which("promtool")
    if not found:
        raise RuntimeError("promtool is needed: apt-get install prometheus (or a release tarball)")
    return found


def prometheus_rule() -> dict[str, Any]:
    (rule,) = by_kind(rendered(K8S_MONITORING), "PrometheusRule")
    return rule


def alert_rules() -> list[dict[str, Any]]:
    return [r for group in prometheus_rule()["spec"]["groups"] for r in group["rules"]]


def dashboard() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return data


def dashboard_panels() -> list[dict[str, Any]]:
    return [p for p in dashboard()["panels"] if p["type"] != "row"]


def metric_names(expr: str) -> set[str]:
    return set(METRIC_NAME.findall(expr))


def names_in_rules_and_panels() -> dict[str, set[str]]:
    """Metric name -> where it is used ("alert X", "panel Y")."""
    used: dict[str, set[str]] = {}
    for rule in alert_rules():
        for name in metric_names(rule["expr"]):
            used.setdefault(name, set()).add(f"alert {rule['alert']}")
    for panel in dashboard_panels():
        for target in panel["targets"]:
            for name in metric_names(target["expr"]):
                used.setdefault(name, set()).add(f"panel {panel['title']}")
    return used


def run_promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool(), *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )
