"""Dockerfile: read line by line and held to the issue's rules (`make compose-smoke` builds it)."""

from __future__ import annotations

import re
import shlex
import tomllib
from typing import Any

from .dockerfile import (
    DOCKERIGNORE,
    Instruction,
    dockerfile_instructions,
    dockerfile_stages,
    dockerignored,
    exec_form,
)
from .manifests import ROOT


def pyproject() -> dict[str, Any]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def _stage_name(stage: list[Instruction]) -> str | None:
    match = re.search(r"\s+AS\s+(\S+)\s*$", stage[0].args, re.IGNORECASE)
    return match.group(1) if match else None


def _env(stage: list[Instruction]) -> dict[str, str]:
    env: dict[str, str] = {}
    for ins in stage:
        if ins.keyword == "ENV":
            for token in shlex.split(ins.args):
                key, sep, value = token.partition("=")
                if sep:
                    env[key] = value
    return env


def _runs(stage: list[Instruction]) -> list[str]:
    return [i.args for i in stage if i.keyword == "RUN"]


def _copy_sources(ins: Instruction) -> list[str]:
    tokens = [t for t in shlex.split(ins.args) if not t.startswith("--")]
    return tokens[:-1]


def test_dockerfile_parses_into_known_instructions() -> None:
    known = {
        "FROM", "ARG", "ENV", "RUN", "COPY", "WORKDIR", "USER", "EXPOSE", "HEALTHCHECK",
        "CMD", "LABEL", "STOPSIGNAL",
    }  # fmt: skip
    instructions = dockerfile_instructions()
    assert instructions
    assert {i.keyword for i in instructions} <= known
    assert instructions[0].keyword in ("FROM", "ARG")


def test_multi_stage_with_a_slim_runtime() -> None:
    stages = dockerfile_stages()
    assert len(stages) >= 2, "multi-stage: a builder and a runtime"
    names = [_stage_name(s) for s in stages]
    builder = names[0]
    assert builder, "name the builder stage (FROM ... AS builder)"
    runtime = stages[-1]
    assert "slim" in runtime[0].args, "the runtime stage starts from a slim Python image"
    assert any(i.keyword == "COPY" and f"--from={builder}" in i.args for i in runtime), (
        "the runtime copies the installed environment from the builder"
    )


def test_python_version_satisfies_the_project() -> None:
    args = {
        i.args.split("=", 1)[0]: i.args.split("=", 1)[1]
        for i in dockerfile_instructions()
        if i.keyword == "ARG" and "=" in i.args
    }
    version = args.get("PYTHON_VERSION", "")
    assert re.fullmatch(r"3\.\d+", version), version
    minimum = re.search(r">=\s*3\.(\d+)", pyproject()["project"]["requires-python"])
    assert minimum
    assert int(version.split(".")[1]) >= int(minimum.group(1))


def test_builder_installs_exactly_the_lock_without_dev_groups() -> None:
    builder = dockerfile_stages()[0]
    copied = [s for i in builder if i.keyword == "COPY" for s in _copy_sources(i)]
    assert "uv.lock" in copied
    assert "pyproject.toml" in copied
    assert any(re.search(r"pip install .*uv==\S+", r) for r in _runs(builder)), "pin uv"
    syncs = [r for r in _runs(builder) if "uv sync" in r]
    assert syncs, "dependencies come from `uv sync`"
    default_groups = set(pyproject().get("tool", {}).get("uv", {}).get("default-groups", ["dev"]))
    for run in syncs:
        assert "--frozen" in run or "--locked" in run, "install what uv.lock pins, nothing else"
        excluded = "--no-default-groups" in run or (default_groups == {"dev"} and "--no-dev" in run)
        assert excluded, f"the image must not get the default groups {sorted(default_groups)}"
        assert "--group" not in run
        assert "--all-groups" not in run
    # Dependencies are a layer of their own, before the sources are copied.
    first_sync = next(i for i in builder if i.keyword == "RUN" and "uv sync" in i.args)
    assert "--no-install-project" in first_sync.args
    lock_copy = next(i for i in builder if i.keyword == "COPY" and "uv.lock" in i.args)
    assert lock_copy.line < first_sync.line


def test_runtime_copies_the_dependencies_before_the_code() -> None:
    """The venv (changes with uv.lock) is a layer of its own below the code (changes with every
    commit), so a release ships a small layer and the dependency layer stays cached; every
    package of the project is copied, and nothing else of the repository."""
    runtime = dockerfile_stages()[-1]
    copies = [i for i in runtime if i.keyword == "COPY"]
    venv = next(i for i in copies if "--from=builder" in i.args and "/app/.venv" in i.args)
    packages = pyproject()["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"]
    code = [i for i in copies if set(_copy_sources(i)) & set(packages)]
    assert {s for i in code for s in _copy_sources(i)} >= set(packages)
    assert all(i.line > venv.line for i in code)
    builder_copies = [
        s for i in dockerfile_stages()[0] if i.keyword == "COPY" for s in _copy_sources(i)
    ]
    assert builder_copies == ["pyproject.toml", "uv.lock"], "the builder sees only the lock"


def test_runtime_finds_the_code_and_defaults_to_production() -> None:
    env = _env(dockerfile_stages()[-1])
    assert env.get("PYTHONPATH") == "/app", "celery and alembic import the code from /app"
    assert env.get("TASKPIPE_ENV") == "production", "a forgotten setting must not mean development"
    assert env.get("FORWARDED_ALLOW_IPS") == "127.0.0.1", "trust no proxy unless told"
    compiles = [r for r in _runs(dockerfile_stages()[-1]) if "compileall" in r]
    assert compiles, "bytecode at build time: the root filesystem is read-only at run time"


def test_runtime_runs_as_non_root_with_python_env() -> None:
    runtime = dockerfile_stages()[-1]
    users = [i.args for i in runtime if i.keyword == "USER"]
    assert users, "USER in the runtime stage"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0")
    assert user.isdigit(), "numeric USER, so that Kubernetes can verify runAsNonRoot"
    assert any("useradd" in r and f"--uid {user}" in r for r in _runs(runtime))
    env = _env(runtime)
    assert env.get("PYTHONDONTWRITEBYTECODE") == "1"
    assert env.get("PYTHONUNBUFFERED") == "1"
    assert "/.venv/bin" in env.get("PATH", "")


def test_runtime_leaves_no_compiler_or_cache() -> None:
    runtime = dockerfile_stages()[-1]
    for run in _runs(runtime):
        assert not re.search(r"\b(pip|uv)\b", run), "install in the builder, copy the venv"
        assert not re.search(r"build-essential|\bgcc\b|\bg\+\+|-dev\b", run)
        if "apt-get install" in run:
            assert "--no-install-recommends" in run
            assert "rm -rf /var/lib/apt/lists" in run
    builder = dockerfile_stages()[0]
    for run in _runs(builder):
        if "uv sync" in run:
            assert "--mount=type=cache" in run or "--no-cache" in run, "keep uv's cache out"
    builder_env = _env(builder)
    assert builder_env.get("PIP_NO_CACHE_DIR") == "1"


def test_runtime_has_migrations_and_a_healthcheck() -> None:
    runtime = dockerfile_stages()[-1]
    workdirs = [i.args for i in runtime if i.keyword == "WORKDIR"]
    assert workdirs == ["/app"]
    copied = {s.rstrip("/") for i in runtime if i.keyword == "COPY" for s in _copy_sources(i)}
    assert {"alembic.ini", "migrations"} <= copied, "`alembic upgrade head` runs from the workdir"
    healthchecks = [i for i in runtime if i.keyword == "HEALTHCHECK"]
    assert len(healthchecks) == 1
    assert re.search(r"--interval=\d+s", healthchecks[0].args)
    assert re.search(r"--timeout=\d+s", healthchecks[0].args)
    cmd = [i for i in runtime if i.keyword == "CMD"]
    assert cmd
    assert exec_form(cmd[-1].args), "exec-form CMD so that PID 1 gets SIGTERM"


def test_copied_sources_exist_and_are_in_the_build_context() -> None:
    for stage in dockerfile_stages():
        for ins in stage:
            if ins.keyword != "COPY" or "--from=" in ins.args:
                continue
            for src in _copy_sources(ins):
                assert (ROOT / src).exists(), f"line {ins.line}: {src} does not exist"
                assert not dockerignored(src), f"line {ins.line}: {src} is in .dockerignore"


def test_dockerignore_keeps_junk_and_secrets_out() -> None:
    assert DOCKERIGNORE.is_file()
    for path in (
        ".venv",
        ".git",
        ".env",
        ".env.local",
        ".pytest_cache",
        ".mypy_cache",
        ".ruff_cache",
        "api/__pycache__",
        "api/__pycache__/main.cpython-311.pyc",
        "tests",
        "loadtests",
        "reports",
        "htmlcov",
        ".coverage",
        "docs",
        "k8s",
        "deploy",
        "devstack/cli.py",
        "Makefile",
    ):
        assert dockerignored(path), f"{path} must not reach the build context"
    for path in (
        "pyproject.toml",
        "uv.lock",
        "alembic.ini",
        "migrations/env.py",
        "api/main.py",
        "common/config.py",
        "worker/app.py",
        "worker/mail/templates/verify_email.txt",
    ):
        assert not dockerignored(path), f"{path} is needed by the build"
