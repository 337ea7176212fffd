"""Checks of the deploy files (Dockerfile, docker-compose.yml, k8s/) with no engine or cluster.

No engine and no cluster run where these tests run, so they read the files: they parse them, render
the kustomizations the way `kustomize build` does for the features used here, validate every
Kubernetes object offline against the schemas of a fixed Kubernetes version, and resolve every
command (uvicorn app, celery app, `python -m` module, alembic config) and every probe path against
the code. The helpers below are shared by the test modules of this package.
"""

from __future__ import annotations

import copy
import fnmatch
import importlib
import importlib.util
import re
import shlex
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "k8s"
K8S_BASE = K8S / "base"
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
ENV_EXAMPLE = ROOT / ".env.example"

# Schemas of this Kubernetes version (shipped inside kubernetes-validate, no network needed).
K8S_VERSION = "1.30"

# The longest hard time limit of any task (seconds); worker pods must get more than this to stop.
LONGEST_TASK_HARD_LIMIT = 300

API_PORT = 8000
FLOWER_PORT = 5555

WORKLOAD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "Job"}
SCALABLE_KINDS = {"Deployment", "StatefulSet", "ReplicaSet", "ReplicationController"}
CLUSTER_SCOPED_KINDS = {
    "Namespace",
    "ClusterRole",
    "ClusterRoleBinding",
    "CustomResourceDefinition",
    "PersistentVolume",
    "StorageClass",
    "IngressClass",
    "PriorityClass",
}


# --------------------------------------------------------------------------------------------
# YAML and kustomize
# --------------------------------------------------------------------------------------------


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
    """Every folder under k8s/ with a kustomization.yaml (the base and each overlay)."""
    return sorted(p.parent for p in K8S.rglob("kustomization.yaml"))


SUPPORTED_KUSTOMIZE_KEYS = {
    "apiVersion",
    "kind",
    "namespace",
    "resources",
    "images",
    "replicas",
    "patches",
}


def render_kustomization(kdir: Path) -> list[dict[str, Any]]:
    """A `kustomize build` for the features Taskpipe's kustomizations use (others are refused)."""
    kust = load_yaml(kdir / "kustomization.yaml")
    unknown = set(kust) - SUPPORTED_KUSTOMIZE_KEYS
    if unknown:
        raise NotImplementedError(
            f"{kdir}: kustomization keys {sorted(unknown)} are not handled by the test renderer "
            "(tests/deploy/__init__.py); teach it or do without them"
        )
    objects: list[dict[str, Any]] = []
    for entry in kust.get("resources", []):
        path = (kdir / entry).resolve()
        if path.is_dir():
            objects.extend(render_kustomization(path))
        else:
            objects.extend(copy.deepcopy(load_all(path)))
    for spec in kust.get("patches", []):
        objects = _apply_patch(kdir, objects, spec)
    if "namespace" in kust:
        for obj in objects:
            if obj["kind"] not in CLUSTER_SCOPED_KINDS:
                obj["metadata"]["namespace"] = kust["namespace"]
    for rep in kust.get("replicas", []):
        matches = [
            o
            for o in objects
            if o["metadata"]["name"] == rep["name"] and o["kind"] in SCALABLE_KINDS
        ]
        if not matches:
            raise LookupError(f"{kdir}: replicas for unknown object {rep['name']}")
        for obj in matches:
            obj["spec"]["replicas"] = rep["count"]
    for img in kust.get("images", []):
        _set_image(objects, img)
    return objects


def _apply_patch(
    kdir: Path, objects: list[dict[str, Any]], spec: dict[str, Any]
) -> list[dict[str, Any]]:
    text = (kdir / spec["path"]).read_text() if "path" in spec else spec["patch"]
    body = yaml.safe_load(text)
    target = spec.get("target")
    if isinstance(body, list):  # RFC 6902 JSON patch
        if not target:
            raise ValueError(f"{kdir}: a JSON6902 patch needs a target")
        hits = [o for o in objects if _matches_target(o, target)]
        if not hits:
            raise LookupError(f"{kdir}: patch target {target} matches nothing")
        for obj in hits:
            for op in body:
                _json_patch_op(obj, op)
        return objects
    if not isinstance(body, dict):
        raise ValueError(f"{kdir}: patch is neither a list nor an object")
    sel = target or {"kind": body["kind"], "name": body["metadata"]["name"]}
    hits = [o for o in objects if _matches_target(o, sel)]
    if not hits:
        raise LookupError(f"{kdir}: patch target {sel} matches nothing")
    if body.get("$patch") == "delete":
        return [o for o in objects if not any(o is h for h in hits)]
    merge = {k: v for k, v in body.items() if k not in ("apiVersion", "kind")}
    for obj in hits:
        _strategic_merge(obj, merge)
    return objects


def _matches_target(obj: dict[str, Any], target: dict[str, Any]) -> bool:
    if "kind" in target and obj["kind"] != target["kind"]:
        return False
    return "name" not in target or obj["metadata"]["name"] == target["name"]


def _strategic_merge(dst: dict[str, Any], src: dict[str, Any]) -> None:
    for key, value in src.items():
        if isinstance(value, dict) and isinstance(dst.get(key), dict):
            _strategic_merge(dst[key], value)
        elif isinstance(value, list):
            raise NotImplementedError(
                "strategic-merge patches of lists are not handled by the test renderer; "
                "use a JSON6902 patch with a target"
            )
        else:
            dst[key] = copy.deepcopy(value)


def _json_patch_op(obj: dict[str, Any], op: dict[str, Any]) -> None:
    parts = [p.replace("~1", "/").replace("~0", "~") for p in op["path"].split("/")[1:]]
    parent: Any = obj
    for part in parts[:-1]:
        parent = parent[int(part)] if isinstance(parent, list) else parent[part]
    last = parts[-1]
    kind = op["op"]
    if isinstance(parent, list):
        index = len(parent) if last == "-" else int(last)
        if kind == "add":
            parent.insert(index, op["value"])
        elif kind == "replace":
            parent[index] = op["value"]
        elif kind == "remove":
            del parent[index]
        else:
            raise NotImplementedError(kind)
    elif kind == "add" or kind == "replace":
        if kind == "replace" and last not in parent:
            raise KeyError(f"replace of missing path {op['path']}")
        parent[last] = op["value"]
    elif kind == "remove":
        del parent[last]
    else:
        raise NotImplementedError(kind)


def split_image(image: str) -> tuple[str, str | None]:
    """`registry:5000/ns/name:tag` -> (`registry:5000/ns/name`, `tag`); digests kept as the tag."""
    if "@" in image:
        name, digest = image.split("@", 1)
        return name, "@" + digest
    slash = image.rfind("/")
    colon = image.rfind(":")
    if colon > slash:
        return image[:colon], image[colon + 1 :]
    return image, None


def _set_image(objects: list[dict[str, Any]], img: dict[str, Any]) -> None:
    for obj in objects:
        for container in all_containers(obj):
            name, tag = split_image(container["image"])
            if name != img["name"]:
                continue
            new_name = img.get("newName", name)
            if "digest" in img:
                container["image"] = f"{new_name}@{img['digest']}"
            else:
                new_tag = img.get("newTag", tag.lstrip("@") if tag else None)
                container["image"] = f"{new_name}:{new_tag}" if new_tag else new_name


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


@cache
def rendered(kdir: Path) -> tuple[dict[str, Any], ...]:
    """Rendered objects of one kustomization, cached (tests must not mutate them)."""
    return tuple(render_kustomization(kdir))


def by_kind(objects: tuple[dict[str, Any], ...] | list[dict[str, Any]], kind: str) -> list[dict]:
    return [o for o in objects if o["kind"] == kind]


def manifest_files(kdir: Path) -> list[Path]:
    """The manifest files of one kustomization folder (not its sub-folders)."""
    return sorted(
        p
        for p in kdir.iterdir()
        if p.suffix in (".yaml", ".yml")
        and p.name not in ("kustomization.yaml", "kustomization.yml")
    )


# --------------------------------------------------------------------------------------------
# Commands: where each one comes from, and what it must resolve to
# --------------------------------------------------------------------------------------------


@dataclass
class Command:
    """One command line the deployment runs, with where it was found (for messages)."""

    where: str
    argv: list[str]
    # HTTP servers the process that this command checks/serves runs: port -> server kind
    serves: dict[int, str] = field(default_factory=dict)


def compose() -> dict[str, Any]:
    return load_yaml(COMPOSE_FILE)


def taskpipe_compose_services() -> dict[str, dict[str, Any]]:
    """Compose services that run the Taskpipe image (built from this repo's Dockerfile)."""
    return {
        name: svc
        for name, svc in compose()["services"].items()
        if "build" in svc or str(svc.get("image", "")).startswith("taskpipe")
    }


def as_argv(cmd: str | list[str]) -> list[str]:
    return shlex.split(cmd) if isinstance(cmd, str) else [str(c) for c in cmd]


def healthcheck_argv(test: str | list[str]) -> list[str]:
    """A compose/Docker healthcheck `test` as an argv (CMD, CMD-SHELL, or a plain string)."""
    if isinstance(test, str):
        return shlex.split(test)
    if test[0] == "CMD":
        return [str(t) for t in test[1:]]
    if test[0] == "CMD-SHELL":
        return shlex.split(test[1])
    raise ValueError(f"unexpected healthcheck test {test!r}")


def server_of(argv: list[str]) -> dict[int, str]:
    """Which HTTP server (and on which port) a long-running command starts."""
    if not argv:
        return {}
    if Path(argv[0]).name == "uvicorn":
        port = API_PORT
        if "--port" in argv:
            port = int(argv[argv.index("--port") + 1])
        target = next(a for a in argv[1:] if ":" in a and not a.startswith("-"))
        return {port: f"asgi:{target}"}
    if argv[:3] == ["python", "-m", "worker.flower"]:
        return {FLOWER_PORT: "flower"}
    return {}


# --------------------------------------------------------------------------------------------
# Dockerfile
# --------------------------------------------------------------------------------------------


@dataclass
class Instruction:
    keyword: str
    args: str
    line: int


def dockerfile_instructions(path: Path = DOCKERFILE) -> list[Instruction]:
    """The Dockerfile as instructions: comments dropped, continuation lines joined."""
    out: list[Instruction] = []
    buf = ""
    start = 0
    for number, raw in enumerate(path.read_text().splitlines(), start=1):
        line = raw.strip()
        if not buf and (not line or line.startswith("#")):
            continue
        if buf and line.startswith("#"):
            continue
        if not buf:
            start = number
        if line.endswith("\\"):
            buf += line[:-1].rstrip() + " "
            continue
        buf += line
        keyword, _, args = buf.partition(" ")
        out.append(Instruction(keyword.upper(), args.strip(), start))
        buf = ""
    if buf:
        raise ValueError("Dockerfile ends inside a continued line")
    return out


def dockerfile_stages(path: Path = DOCKERFILE) -> list[list[Instruction]]:
    stages: list[list[Instruction]] = []
    for ins in dockerfile_instructions(path):
        if ins.keyword == "FROM":
            stages.append([ins])
        elif stages:
            stages[-1].append(ins)
    return stages


def exec_form(args: str) -> list[str] | None:
    """The JSON (exec) form of CMD/ENTRYPOINT/HEALTHCHECK CMD, or None for the shell form."""
    import json

    text = args.strip()
    if not text.startswith("["):
        return None
    value = json.loads(text)
    assert isinstance(value, list)
    return [str(v) for v in value]


def healthcheck_cmd(args: str) -> list[str]:
    """`HEALTHCHECK [--opts] CMD ...` -> argv."""
    _, sep, rest = args.partition("CMD ")
    if not sep:
        raise ValueError(f"HEALTHCHECK without CMD: {args!r}")
    form = exec_form(rest)
    return form if form is not None else shlex.split(rest)


def dockerignore_patterns() -> list[str]:
    return [
        line.strip()
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.strip().startswith("#")
    ]


def dockerignored(relpath: str) -> bool:
    """Whether a path of the build context is excluded (later `!` patterns re-include)."""
    excluded = False
    for pattern in dockerignore_patterns():
        negate = pattern.startswith("!")
        pat = pattern[1:] if negate else pattern
        pat = pat.strip("/")
        parts = relpath.split("/")
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        hit = any(
            fnmatch.fnmatchcase(p, pat) or fnmatch.fnmatchcase(p, pat.removeprefix("**/"))
            for p in prefixes
        )
        if hit:
            excluded = not negate
    return excluded


# --------------------------------------------------------------------------------------------
# The code the deployment points at
# --------------------------------------------------------------------------------------------


def pyproject() -> dict[str, Any]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def settings_env_names() -> set[str]:
    from common.config import Settings

    return {f"TASKPIPE_{name.upper()}" for name in Settings.model_fields}


def _match_full(route: Any, path: str) -> bool:
    from starlette.routing import Match

    scope = {"type": "http", "path": path, "method": "GET", "root_path": ""}
    match, _ = route.matches(scope)
    return bool(match == Match.FULL)


@cache
def asgi_app(target: str) -> Any:
    module_name, _, attr = target.partition(":")
    module = importlib.import_module(module_name)
    obj = module
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


def asgi_serves(target: str, path: str) -> bool:
    """Whether the ASGI app `module:attr` answers GET `path` with one of its own routes."""
    app = asgi_app(target)
    return any(_match_full(route, path) for route in app.routes)


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


def urls_in(code: str) -> Iterator[tuple[int, str]]:
    """(port, path) of every http URL literal in a `python -c` snippet."""
    for url in re.findall(r"https?://[^\s'\"]+", code):
        parts = urlsplit(url)
        yield (parts.port or 80), (parts.path or "/")


def check_command(cmd: Command) -> list[str]:
    """Why a command would not start/answer with the code as it is ([] when it resolves)."""
    argv = cmd.argv
    errors: list[str] = []
    if not argv:
        return [f"{cmd.where}: empty command"]
    prog = Path(argv[0]).name
    if prog == "uvicorn":
        targets = [a for a in argv[1:] if ":" in a and not a.startswith("-")]
        if len(targets) != 1:
            return [f"{cmd.where}: uvicorn needs exactly one module:attr, got {targets}"]
        try:
            app = asgi_app(targets[0])
        except (ImportError, AttributeError) as exc:
            return [f"{cmd.where}: uvicorn target {targets[0]} does not resolve: {exc!r}"]
        if not callable(app):
            errors.append(f"{cmd.where}: {targets[0]} is not an ASGI callable")
    elif prog == "celery":
        errors.extend(_check_celery(cmd))
    elif prog in ("python", "python3"):
        if len(argv) >= 3 and argv[1] == "-m":
            if importlib.util.find_spec(argv[2].split(".")[0]) is None:
                return [f"{cmd.where}: package of module {argv[2]} not found"]
            if importlib.util.find_spec(argv[2]) is None:
                errors.append(f"{cmd.where}: module {argv[2]} not found (python -m)")
        elif len(argv) >= 3 and argv[1] == "-c":
            code = argv[2]
            try:
                compile(code, cmd.where, "exec")
            except SyntaxError as exc:
                return [f"{cmd.where}: python -c code does not compile: {exc}"]
            for port, path in urls_in(code):
                server = cmd.serves.get(port)
                if server is None:
                    errors.append(f"{cmd.where}: checks port {port}, where nothing of ours listens")
                elif not server_serves(server, path):
                    errors.append(f"{cmd.where}: {server} serves no GET {path}")
        else:
            errors.append(f"{cmd.where}: python without -m/-c: {argv}")
    elif prog == "alembic":
        errors.extend(_check_alembic(cmd))
    elif prog == "sleep":
        if len(argv) != 2 or not argv[1].isdigit():
            errors.append(f"{cmd.where}: sleep takes one number of seconds")
    elif prog == "taskpipe":
        scripts = pyproject()["project"].get("scripts", {})
        module, _, _ = scripts.get("taskpipe", ":").partition(":")
        if not module or importlib.util.find_spec(module) is None:
            errors.append(f"{cmd.where}: console script taskpipe -> {module!r} not found")
    else:
        errors.append(f"{cmd.where}: unknown program {argv[0]!r}; teach tests/deploy about it")
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
        module = importlib.import_module(module_name)
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
    errors = []
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
            errors.append(
                f"{cmd.where}: worker consumes queues {sorted(wanted - known)} the app never routes"
            )
    return errors


def _check_alembic(cmd: Command) -> list[str]:
    import configparser

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
    script_dir = (ROOT / location).resolve()
    if not (script_dir / "env.py").is_file():
        return [f"{cmd.where}: {script_dir} has no env.py"]
    if cmd.argv[1:3] != ["upgrade", "head"]:
        return [f"{cmd.where}: migrations must run `alembic upgrade head`, got {cmd.argv[1:]}"]
    return []


# --------------------------------------------------------------------------------------------
# Effective settings of a process, as the app would read them from its environment
# --------------------------------------------------------------------------------------------

# Stand-ins for real secrets, so that production validation can run on the rest of the config.
REAL_LOOKING_JWT = "x" * 48
REAL_LOOKING_PASSWORD = "not-the-development-password"


def resolve_compose_value(value: Any) -> str:
    """`${VAR:-default}` / `${VAR-default}` -> default (no shell environment, no .env)."""
    text = str(value)
    return re.sub(r"\$\{[A-Za-z_][A-Za-z0-9_]*(?::?-([^}]*))?\}", lambda m: m.group(1) or "", text)


def container_env(obj: dict[str, Any], container: dict[str, Any], objects: Any) -> dict[str, str]:
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
    return Isolated(**values)
