"""k8s/: every kustomization rendered by `kubectl kustomize`, its objects schema-valid,
consistent names/labels/selectors, and the production rules for each workload (probes,
resources, hardening, one beat, graceful stops, who may connect to what)."""

from __future__ import annotations

import functools
import ipaddress
from pathlib import Path
from typing import Any

import kubernetes_validate
import kubernetes_validate.utils
import pytest
import yaml

from api.server import GRACEFUL_SHUTDOWN_SECONDS
from common.jobs import Queue

from .commands import load_celery_app
from .manifests import (
    K8S,
    K8S_BASE,
    K8S_VERSION,
    OPERATOR_API_GROUP,
    all_containers,
    app_kustomization_dirs,
    by_kind,
    component,
    container_argv,
    kustomization_dirs,
    label_selector_matches,
    load_all,
    load_yaml,
    manifest_files,
    pod_labels,
    pod_spec,
    rendered,
    selector_matches,
)

# The longest hard time limit of any task (seconds); worker pods must get more than this to stop.
LONGEST_TASK_HARD_LIMIT = 300

# kubernetes-validate re-reads its (large) definitions file for every object; read each file once.
_kv = kubernetes_validate.utils
_kv.schema_contents = functools.cache(_kv.schema_contents)

ALL_KDIRS = kustomization_dirs()
ALL_KDIR_IDS = [str(d.relative_to(K8S)) for d in ALL_KDIRS]
KDIRS = app_kustomization_dirs()
KDIR_IDS = [str(d.relative_to(K8S)) for d in KDIRS]
ALL_MANIFESTS = sorted(p for p in K8S.rglob("*.y*ml"))


def _deployments(kdir: Path) -> list[dict[str, Any]]:
    return by_kind(rendered(kdir), "Deployment")


def _workloads(kdir: Path) -> list[dict[str, Any]]:
    return [o for o in rendered(kdir) if pod_spec(o) is not None]


def _one(objects: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [o for o in objects if component(o) == name]


# ------------------------------------------------------------------------------- layout


def test_base_and_an_overlay_exist() -> None:
    assert K8S_BASE in KDIRS, "k8s/base/kustomization.yaml is the kustomize base"
    assert len(KDIRS) >= 2, "an example overlay under k8s/overlays/ shows how to ship the base"


@pytest.mark.parametrize("path", ALL_MANIFESTS, ids=lambda p: str(p.relative_to(K8S)))
def test_every_file_is_well_formed_yaml(path: Path) -> None:
    with path.open() as fh:
        docs = [d for d in yaml.safe_load_all(fh) if d is not None]
    assert docs, f"{path} is empty"
    if path.name != "kustomization.yaml":
        load_all(path)  # every document is an object with apiVersion and kind


@pytest.mark.parametrize("kdir", ALL_KDIRS, ids=ALL_KDIR_IDS)
def test_kustomization_lists_every_manifest_in_its_folder(kdir: Path) -> None:
    listed = {
        (kdir / r).resolve()
        for r in load_yaml(kdir / "kustomization.yaml").get("resources", [])
        if not (kdir / r).is_dir()
    }
    on_disk = {p.resolve() for p in manifest_files(kdir)}
    assert on_disk - listed == set(), "manifests not listed in kustomization.yaml (never applied)"
    assert listed - on_disk == set(), "kustomization.yaml lists files that do not exist"


@pytest.mark.parametrize("kdir", ALL_KDIRS, ids=ALL_KDIR_IDS)
def test_every_rendered_object_validates_against_the_kubernetes_schema(kdir: Path) -> None:
    """What `kubectl kustomize` renders, strictly (unknown fields fail); the Prometheus
    Operator's kinds have no offline schema and are checked in test_monitoring.py."""
    errors = []
    for obj in rendered(kdir):
        if obj["apiVersion"].startswith(OPERATOR_API_GROUP):
            continue
        try:
            kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            path = "/".join(str(p) for p in exc.path)
            errors.append(f"{obj['kind']}/{obj['metadata']['name']}: {path}: {exc.message}")
        except kubernetes_validate.SchemaNotFoundError as exc:
            errors.append(f"{obj['kind']}/{obj['metadata']['name']}: {exc.message}")
    assert errors == []


@pytest.mark.parametrize("kdir", KDIRS, ids=KDIR_IDS)
def test_names_are_unique_and_everything_is_in_the_namespace(kdir: Path) -> None:
    objects = rendered(kdir)
    keys = [(o["kind"], o["metadata"]["name"]) for o in objects]
    assert len(keys) == len(set(keys)), "duplicate kind/name after rendering"
    namespaces = by_kind(objects, "Namespace")
    assert len(namespaces) == 1
    ns = namespaces[0]["metadata"]["name"]
    for obj in objects:
        if obj["kind"] != "Namespace":
            assert obj["metadata"].get("namespace") == ns, (
                f"{obj['kind']}/{obj['metadata']['name']}"
            )


# ------------------------------------------------------------------------------- consistency


@pytest.mark.parametrize("kdir", KDIRS, ids=KDIR_IDS)
def test_deployment_selectors_match_their_pods_and_do_not_overlap(kdir: Path) -> None:
    deps = _deployments(kdir)
    for dep in deps:
        assert label_selector_matches(dep["spec"]["selector"], pod_labels(dep)), dep["metadata"]
    for a in deps:
        for b in deps:
            if a is not b:
                assert not label_selector_matches(a["spec"]["selector"], pod_labels(b)), (
                    f"{a['metadata']['name']} would adopt the pods of {b['metadata']['name']}"
                )


@pytest.mark.parametrize("kdir", KDIRS, ids=KDIR_IDS)
def test_each_service_selects_a_deployment_and_a_named_port(kdir: Path) -> None:
    deps = _deployments(kdir)
    services = by_kind(rendered(kdir), "Service")
    assert services
    for svc in services:
        targets = [d for d in deps if selector_matches(svc["spec"]["selector"], pod_labels(d))]
        assert targets, f"Service {svc['metadata']['name']} selects no Deployment's pods"
        for dep in targets:
            ports = {
                p.get("name"): p["containerPort"]
                for c in pod_spec(dep)["containers"]
                for p in c.get("ports", [])
            }
            for port in svc["spec"]["ports"]:
                target = port.get("targetPort", port["port"])
                ok = target in ports if isinstance(target, str) else target in ports.values()
                assert ok, f"Service {svc['metadata']['name']} targets port {target!r}: not on pod"


@pytest.mark.parametrize("kdir", KDIRS, ids=KDIR_IDS)
def test_each_pdb_covers_an_existing_deployment(kdir: Path) -> None:
    deps = _deployments(kdir)
    for pdb in by_kind(rendered(kdir), "PodDisruptionBudget"):
        targets = [
            d for d in deps if label_selector_matches(pdb["spec"]["selector"], pod_labels(d))
        ]
        assert targets, f"PDB {pdb['metadata']['name']} selects no pods"
        for dep in targets:
            assert component(dep) != "beat", "no PDB on beat: it would block node drains"


@pytest.mark.parametrize("kdir", KDIRS, ids=KDIR_IDS)
def test_each_hpa_scales_an_existing_deployment_with_cpu_requests(kdir: Path) -> None:
    deps = {d["metadata"]["name"]: d for d in _deployments(kdir)}
    hpas = by_kind(rendered(kdir), "HorizontalPodAutoscaler")
    for hpa in hpas:
        ref = hpa["spec"]["scaleTargetRef"]
        assert ref["kind"] == "Deployment"
        assert ref["name"] in deps, f"HPA {hpa['metadata']['name']} targets a missing Deployment"
        dep = deps[ref["name"]]
        assert component(dep) != "beat", "beat must never be autoscaled"
        assert hpa["spec"]["minReplicas"] >= 2
        assert hpa["spec"]["maxReplicas"] >= hpa["spec"]["minReplicas"]
        if any(m["type"] == "Resource" for m in hpa["spec"]["metrics"]):
            for c in pod_spec(dep)["containers"]:
                assert c["resources"]["requests"].get("cpu"), "CPU utilization needs cpu requests"


@pytest.mark.parametrize("kdir", KDIRS, ids=KDIR_IDS)
def test_ingress_backends_are_existing_service_ports(kdir: Path) -> None:
    services = {s["metadata"]["name"]: s for s in by_kind(rendered(kdir), "Service")}
    for ing in by_kind(rendered(kdir), "Ingress"):
        for rule in ing["spec"]["rules"]:
            for path in rule["http"]["paths"]:
                backend = path["backend"]["service"]
                assert backend["name"] in services, f"Ingress backend {backend['name']} missing"
                ports = services[backend["name"]]["spec"]["ports"]
                want = backend["port"]
                assert any(
                    p.get("name") == want.get("name") or p["port"] == want.get("number")
                    for p in ports
                ), f"Ingress backend port {want} not on Service {backend['name']}"
                assert component(services[backend["name"]]) != "flower", "Flower stays internal"


@pytest.mark.parametrize("kdir", KDIRS, ids=KDIR_IDS)
def test_config_and_serviceaccount_references_resolve(kdir: Path) -> None:
    objects = rendered(kdir)
    config_maps = {o["metadata"]["name"] for o in by_kind(objects, "ConfigMap")}
    secrets = {o["metadata"]["name"] for o in by_kind(objects, "Secret")}
    accounts = {o["metadata"]["name"] for o in by_kind(objects, "ServiceAccount")}
    for obj in _workloads(kdir):
        spec = pod_spec(obj)
        assert spec.get("serviceAccountName") in accounts, obj["metadata"]["name"]
        for c in all_containers(obj):
            for src in c.get("envFrom", []):
                if "configMapRef" in src:
                    assert src["configMapRef"]["name"] in config_maps
                if "secretRef" in src and kdir == K8S_BASE:
                    # Overlays may drop the template and use a Secret created out of band.
                    assert src["secretRef"]["name"] in secrets


@pytest.mark.parametrize("kdir", KDIRS, ids=KDIR_IDS)
def test_one_image_for_every_process(kdir: Path) -> None:
    images = {c["image"] for o in _workloads(kdir) for c in all_containers(o)}
    assert len(images) == 1, images
    image = images.pop()
    assert ":" in image.rsplit("/", 1)[-1] or "@" in image, "pin a tag or digest"
    assert not image.endswith(":latest")


# ------------------------------------------------------------------------------- workloads


@pytest.mark.parametrize("kdir", KDIRS, ids=KDIR_IDS)
def test_every_workload_is_hardened(kdir: Path) -> None:
    for obj in _workloads(kdir):
        name = obj["metadata"]["name"]
        spec = pod_spec(obj)
        pod_sc = spec.get("securityContext", {})
        assert spec.get("automountServiceAccountToken") is False, name
        assert pod_sc.get("seccompProfile", {}).get("type") == "RuntimeDefault", name
        for c in all_containers(obj):
            sc = c.get("securityContext", {})
            where = f"{name}/{c['name']}"
            assert sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot")) is True, where
            uid = sc.get("runAsUser", pod_sc.get("runAsUser"))
            assert isinstance(uid, int), f"{where}: numeric runAsUser"
            assert uid != 0, f"{where}: non-root runAsUser"
            assert sc.get("allowPrivilegeEscalation") is False, where
            assert sc.get("readOnlyRootFilesystem") is True, where
            assert sc.get("capabilities", {}).get("drop") == ["ALL"], where
            assert not sc.get("capabilities", {}).get("add"), where
            assert not sc.get("privileged"), where
            # Read-only root: /tmp (heartbeat files, beat schedule, temp files) must be writable.
            mounts = {m["mountPath"]: m["name"] for m in c.get("volumeMounts", [])}
            assert "/tmp" in mounts, f"{where}: mount an emptyDir at /tmp"
            volumes = {v["name"]: v for v in spec.get("volumes", [])}
            assert "emptyDir" in volumes[mounts["/tmp"]], where


@pytest.mark.parametrize("kdir", KDIRS, ids=KDIR_IDS)
def test_every_container_has_requests_and_limits(kdir: Path) -> None:
    for obj in _workloads(kdir):
        for c in all_containers(obj):
            res = c.get("resources", {})
            where = f"{obj['metadata']['name']}/{c['name']}"
            assert {"cpu", "memory"} <= set(res.get("requests", {})), where
            assert "memory" in res.get("limits", {}), where


@pytest.mark.parametrize("kdir", KDIRS, ids=KDIR_IDS)
def test_every_deployment_has_liveness_and_readiness_probes(kdir: Path) -> None:
    for dep in _deployments(kdir):
        for c in pod_spec(dep)["containers"]:
            where = f"{dep['metadata']['name']}/{c['name']}"
            assert "livenessProbe" in c, where
            assert "readinessProbe" in c, where
            for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
                if probe in c:
                    assert c[probe].get("timeoutSeconds", 1) >= 1, where


@pytest.mark.parametrize("kdir", KDIRS, ids=KDIR_IDS)
def test_api_is_highly_available(kdir: Path) -> None:
    apis = _one(_deployments(kdir), "api")
    assert len(apis) == 1
    api = apis[0]
    name = api["metadata"]["name"]
    hpas = [
        h
        for h in by_kind(rendered(kdir), "HorizontalPodAutoscaler")
        if h["spec"]["scaleTargetRef"]["name"] == name
    ]
    assert hpas, "the API scales with an HPA on CPU"
    assert any(
        m["type"] == "Resource" and m["resource"]["name"] == "cpu"
        for m in hpas[0]["spec"]["metrics"]
    )
    replicas = api["spec"].get("replicas", hpas[0]["spec"]["minReplicas"])
    assert replicas >= 2
    assert hpas[0]["spec"]["minReplicas"] >= 2
    strategy = api["spec"].get("strategy", {"type": "RollingUpdate"})
    assert strategy["type"] == "RollingUpdate"
    assert str(strategy.get("rollingUpdate", {}).get("maxUnavailable", "25%")) in ("0", "0%")
    assert any(
        label_selector_matches(p["spec"]["selector"], pod_labels(api))
        for p in by_kind(rendered(kdir), "PodDisruptionBudget")
    ), "the API has a PodDisruptionBudget"
    c = pod_spec(api)["containers"][0]
    assert "startupProbe" in c, "the API has a startup probe"
    assert c["livenessProbe"]["httpGet"]["path"] != c["readinessProbe"]["httpGet"]["path"], (
        "liveness must not depend on PostgreSQL/Redis (that is readiness's job)"
    )


@pytest.mark.parametrize("kdir", KDIRS, ids=KDIR_IDS)
def test_api_stops_gracefully(kdir: Path) -> None:
    api = _one(_deployments(kdir), "api")[0]
    spec = pod_spec(api)
    c = spec["containers"][0]
    pre_stop = 0
    hook = c.get("lifecycle", {}).get("preStop", {})
    if "exec" in hook and hook["exec"]["command"][0] == "sleep":
        pre_stop = int(hook["exec"]["command"][1])
    assert spec["terminationGracePeriodSeconds"] > pre_stop + GRACEFUL_SHUTDOWN_SECONDS


@pytest.mark.parametrize("kdir", KDIRS, ids=KDIR_IDS)
def test_beat_is_exactly_one_and_recreated(kdir: Path) -> None:
    beats = [
        d
        for d in _deployments(kdir)
        if any(
            "beat" in container_argv(c) and "celery" in container_argv(c)[0]
            for c in pod_spec(d)["containers"]
        )
    ]
    assert len(beats) == 1, "exactly one Deployment runs celery beat"
    beat = beats[0]
    assert beat["spec"].get("replicas", 1) == 1, "beat must be exactly one replica"
    assert beat["spec"].get("strategy", {}).get("type") == "Recreate", (
        "beat needs strategy Recreate: a rolling update would run two schedulers"
    )
    name = beat["metadata"]["name"]
    for hpa in by_kind(rendered(kdir), "HorizontalPodAutoscaler"):
        assert hpa["spec"]["scaleTargetRef"]["name"] != name


@pytest.mark.parametrize("kdir", KDIRS, ids=KDIR_IDS)
def test_no_other_workload_runs_beat(kdir: Path) -> None:
    for obj in _workloads(kdir):
        for c in all_containers(obj):
            argv = container_argv(c)
            if argv and argv[0] == "celery" and "worker" in argv:
                assert not {"-B", "--beat"} & set(argv), "embedded beat in a worker"


@pytest.mark.parametrize("kdir", KDIRS, ids=KDIR_IDS)
def test_workers_outlive_their_longest_task(kdir: Path) -> None:
    workers = [
        d
        for d in _deployments(kdir)
        if any(
            container_argv(c)[:1] == ["celery"] and "worker" in container_argv(c)
            for c in pod_spec(d)["containers"]
        )
    ]
    assert workers
    queues: set[str] = set()
    for dep in workers:
        grace = pod_spec(dep).get("terminationGracePeriodSeconds", 30)
        assert grace > LONGEST_TASK_HARD_LIMIT, dep["metadata"]["name"]
        for c in pod_spec(dep)["containers"]:
            argv = container_argv(c)
            env = {e["name"] for e in c.get("env", [])}
            assert {"--concurrency", "-c"} & set(argv) or "TASKPIPE_WORKER_CONCURRENCY" in env, (
                "size each worker pod's prefork pool explicitly (TASKPIPE_WORKER_CONCURRENCY)"
            )
            flag = "--queues" if "--queues" in argv else "-Q"
            queues |= set(argv[argv.index(flag) + 1].split(","))
    assert set(Queue.ALL) <= queues, "every queue has a consumer"


def test_worker_grace_period_covers_the_apps_time_limits() -> None:
    """The hard time limits the Celery app really sets (global and per task) fit the grace."""
    app = load_celery_app("worker.app")
    app.loader.import_default_modules()
    limits = [app.conf.task_time_limit or 0]
    limits += [getattr(t, "time_limit", None) or 0 for t in app.tasks.values()]
    longest = max(limits)
    assert 0 < longest <= LONGEST_TASK_HARD_LIMIT, (
        f"a task may run {longest} s: raise LONGEST_TASK_HARD_LIMIT and the worker grace periods"
    )


@pytest.mark.parametrize("kdir", KDIRS, ids=KDIR_IDS)
def test_migration_job_runs_alembic_once(kdir: Path) -> None:
    jobs = by_kind(rendered(kdir), "Job")
    migrate = [
        j for j in jobs if any(container_argv(c)[:1] == ["alembic"] for c in all_containers(j))
    ]
    assert len(migrate) == 1
    spec = migrate[0]["spec"]
    assert pod_spec(migrate[0])["restartPolicy"] in ("Never", "OnFailure")
    assert spec.get("parallelism", 1) == 1
    assert spec.get("completions", 1) == 1
    assert spec.get("backoffLimit", 6) <= 6
    assert spec.get("activeDeadlineSeconds"), "a hung migration must not block forever"


def test_secret_template_is_dropped_by_the_production_overlay() -> None:
    base_secrets = by_kind(rendered(K8S_BASE), "Secret")
    assert base_secrets, "the base carries the Secret template"
    for kdir in KDIRS:
        if kdir != K8S_BASE:
            assert by_kind(rendered(kdir), "Secret") == [], (
                f"{kdir}: an overlay must not apply placeholder secrets over the real ones"
            )


PRE_ROLLOUT = ("taskpipe.io/deploy-phase", "pre-rollout")


@pytest.mark.parametrize("kdir", KDIRS, ids=KDIR_IDS)
def test_pre_rollout_phase_has_what_the_migration_needs_and_no_workload(kdir: Path) -> None:
    """docs/deploy.md: `kubectl apply -k DIR -l taskpipe.io/deploy-phase=pre-rollout` runs the
    migration Job before the Deployments roll; that selection must be complete and nothing more."""
    objects = rendered(kdir)
    key, value = PRE_ROLLOUT
    phase = {
        (o["kind"], o["metadata"]["name"])
        for o in objects
        if o["metadata"].get("labels", {}).get(key) == value
    }
    job = next(j for j in by_kind(objects, "Job") if component(j) == "migrate")
    spec = pod_spec(job)
    needed = {("Job", job["metadata"]["name"]), ("ServiceAccount", spec["serviceAccountName"])}
    needed |= {("Namespace", o["metadata"]["name"]) for o in by_kind(objects, "Namespace")}
    for c in all_containers(job):
        for src in c.get("envFrom", []):
            if "configMapRef" in src:
                needed.add(("ConfigMap", src["configMapRef"]["name"]))
            if "secretRef" in src and by_kind(objects, "Secret"):
                needed.add(("Secret", src["secretRef"]["name"]))
    assert needed <= phase, f"missing from the pre-rollout phase: {sorted(needed - phase)}"
    assert not {k for k, _ in phase} & {"Deployment", "HorizontalPodAutoscaler", "Service"}


# ------------------------------------------------------------------------------- exposure


PRIVATE_ONLY_PATHS = ("/metrics", "/ready", "/health", "/docs", "/redoc", "/openapi.json")


@pytest.mark.parametrize("kdir", KDIRS, ids=KDIR_IDS)
def test_ingress_routes_the_api_paths_only(kdir: Path) -> None:
    """/metrics (and the probes and docs) never reach the outside: only /api/ is routed."""
    for ing in by_kind(rendered(kdir), "Ingress"):
        for rule in ing["spec"]["rules"]:
            for path in rule["http"]["paths"]:
                assert path["path"].startswith("/api/"), path
                assert path["pathType"] in ("Prefix", "Exact"), path
                for private in PRIVATE_ONLY_PATHS:
                    assert not private.startswith(path["path"]), f"{private} is routed"


@pytest.mark.parametrize("kdir", KDIRS, ids=KDIR_IDS)
def test_ingress_bounds_bodies_time_and_rate(kdir: Path) -> None:
    """What the proxy in front enforces (docs/deploy.md): bodies no larger than the API's own
    largest limit (batches, 256 KiB), short timeouts, a per-client request and connection
    budget."""
    prefix = "nginx.ingress.kubernetes.io/"
    for ing in by_kind(rendered(kdir), "Ingress"):
        notes = {k.removeprefix(prefix): v for k, v in ing["metadata"]["annotations"].items()}
        assert notes["proxy-body-size"] == "256k"
        for timeout in ("proxy-connect-timeout", "proxy-send-timeout", "proxy-read-timeout"):
            assert 0 < int(notes[timeout]) <= 60, timeout
        assert int(notes["limit-rps"]) > 0
        assert int(notes["limit-connections"]) > 0


def _policies_for(objects: tuple[dict[str, Any], ...], name: str) -> list[dict[str, Any]]:
    deployment = _one(by_kind(objects, "Deployment"), name)[0]
    return [
        p
        for p in by_kind(objects, "NetworkPolicy")
        if label_selector_matches(p["spec"]["podSelector"], pod_labels(deployment))
    ]


@pytest.mark.parametrize("kdir", KDIRS, ids=KDIR_IDS)
def test_no_pod_may_connect_to_flower(kdir: Path) -> None:
    (policy,) = _policies_for(rendered(kdir), "flower")
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    assert policy["spec"].get("ingress", []) == [], "port-forward is the way in"


@pytest.mark.parametrize("kdir", KDIRS, ids=KDIR_IDS)
def test_only_the_ingress_controller_and_prometheus_reach_the_api(kdir: Path) -> None:
    (policy,) = _policies_for(rendered(kdir), "api")
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    (rule,) = policy["spec"]["ingress"]
    peers = {
        (
            peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"],
            peer["podSelector"]["matchLabels"]["app.kubernetes.io/name"],
        )
        for peer in rule["from"]
    }
    assert peers == {("ingress-nginx", "ingress-nginx"), ("monitoring", "prometheus")}
    assert [p["port"] for p in rule["ports"]] == ["http"]


@pytest.mark.parametrize("kdir", KDIRS, ids=KDIR_IDS)
def test_forwarded_headers_are_trusted_from_a_narrow_network_only(kdir: Path) -> None:
    """Never `*` or the whole private address space: a client that can reach the API and is
    trusted could choose its own address and dodge the per-IP limits."""
    api = _one(_deployments(kdir), "api")[0]
    env = {e["name"]: e.get("value") for e in pod_spec(api)["containers"][0]["env"]}
    trusted = [item.strip() for item in env["FORWARDED_ALLOW_IPS"].split(",")]
    for item in trusted:
        assert item != "*", "FORWARDED_ALLOW_IPS=* trusts every client"
        network = ipaddress.ip_network(item, strict=False)
        assert network.prefixlen >= 16, f"{item} is wider than a /16"


@pytest.mark.parametrize("kdir", KDIRS, ids=KDIR_IDS)
def test_nothing_is_scraped_by_annotation(kdir: Path) -> None:
    """Annotation-based scrapes send no token (the API's /metrics would answer 404): the
    ServiceMonitor in k8s/monitoring scrapes with it."""
    for obj in _workloads(kdir):
        annotations = obj["spec"]["template"]["metadata"].get("annotations", {})
        assert "prometheus.io/scrape" not in annotations, obj["metadata"]["name"]
