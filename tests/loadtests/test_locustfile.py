"""The Locust suite itself, checked without a load run.

Importing Locust monkey-patches the whole process with gevent, so nothing here imports the
locustfile in the test process: it is parsed (AST) or loaded by Locust in a subprocess.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi import FastAPI

from loadtests import env, routes
from loadtests.accounts import Account, write_accounts

ROOT = Path(__file__).resolve().parents[2]
LOCUSTFILE = ROOT / "loadtests" / "locustfile.py"


@pytest.fixture(scope="module")
def openapi_operations(app: FastAPI) -> set[tuple[str, str]]:
    return {
        (method.upper(), path)
        for path, item in app.openapi()["paths"].items()
        for method in item
        if method in {"get", "post", "put", "patch", "delete"}
    }


def test_every_route_the_scenario_calls_exists_in_the_openapi(
    openapi_operations: set[tuple[str, str]],
) -> None:
    missing = sorted(routes.ENDPOINTS - openapi_operations)
    assert not missing, f"the scenario calls routes the app does not have: {missing}"


def _calls(tree: ast.AST) -> list[ast.Call]:
    return [node for node in ast.walk(tree) if isinstance(node, ast.Call)]


def test_every_request_goes_through_call_with_a_method_and_a_route_template() -> None:
    """So every request is named by its template: `call()` names it and builds its URL."""
    tree = ast.parse(LOCUSTFILE.read_text())
    used: set[tuple[str, str]] = set()
    for node in _calls(tree):
        function = node.func
        if isinstance(function, ast.Attribute) and function.attr == "call":
            method, template = node.args[0], node.args[1]
            assert isinstance(method, ast.Constant), ast.unparse(node)
            assert isinstance(template, ast.Attribute), ast.unparse(node)
            assert isinstance(template.value, ast.Name), ast.unparse(node)
            assert template.value.id == "routes", ast.unparse(node)
            used.add((method.value, getattr(routes, template.attr)))
    assert used == routes.ENDPOINTS, "routes.ENDPOINTS lists exactly what the scenario sends"

    client_uses = [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and node.attr == "client"
        and isinstance(node.value, ast.Name)
        and node.value.id == "self"
    ]
    assert len(client_uses) == 1, "only TaskAppUser.call() may touch self.client"


@pytest.fixture
def credentials(tmp_path: Path) -> Path:
    path = tmp_path / "credentials.csv"
    write_accounts(path, [Account("loadtest-000001@example.com", "x" * 12, "token")])
    return path


def _run(code: str, credentials: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    environ = {**os.environ, env.CREDENTIALS: str(credentials), **extra}
    environ.pop(env.SHAPE, None)
    environ.update(extra)
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


INSPECT = """
import json
from locust.util.load_locustfile import load_locustfile
users, shapes = load_locustfile("loadtests/locustfile.py")
import locustfile as lf

def tags(cls):
    return sorted({tag for t in cls.tasks for tag in getattr(t, "locust_tag_set", ())})

print(json.dumps({
    "users": {
        name: {"weight": cls.weight, "tasks": [t.__name__ for t in cls.tasks], "tags": tags(cls)}
        for name, cls in users.items()
    },
    "shapes": [type(shape).__name__ for shape in shapes],
    "reader_actions": lf.READER_ACTIONS,
    "planner_actions": lf.PLANNER_ACTIONS,
    "syncer_actions": lf.SYNCER_ACTIONS,
    "list_variants": lf.LIST_VARIANTS,
    "think": list(lf.THINK_TIME_SECONDS),
}))
"""


def test_the_locustfile_loads_with_three_user_kinds_and_their_documented_mix(
    credentials: Path,
) -> None:
    result = _run(INSPECT, credentials)
    assert result.returncode == 0, result.stderr
    facts = json.loads(result.stdout.strip().splitlines()[-1])
    users = facts["users"]
    assert set(users) == {"Reader", "Planner", "Syncer"}
    assert users["Reader"]["weight"] > users["Planner"]["weight"] >= users["Syncer"]["weight"]
    assert "poll_changes" in users["Syncer"]["tasks"]
    for kind, actions in (
        ("Reader", "reader_actions"),
        ("Planner", "planner_actions"),
        ("Syncer", "syncer_actions"),
    ):
        mix = facts[actions]
        assert sum(mix.values()) == 1000, f"{actions} weights are in 1000ths"
        # Locust expands {task: weight} into a list with each task `weight` times
        assert len(users[kind]["tasks"]) == 1000
        assert set(users[kind]["tasks"]) == set(mix)
        assert set(users[kind]["tags"]) <= {"read", "write", "auth"}
    assert sum(facts["list_variants"].values()) == 100
    low, high = facts["think"]
    assert 0 < low < high
    assert facts["shapes"] == [], "no shape unless TASKPIPE_LOADTEST_SHAPE asks for one"


@pytest.mark.parametrize(("shape", "expected"), [("spike", "SpikeShape"), ("soak", "SoakShape")])
def test_a_shape_is_chosen_by_environment_variable(
    credentials: Path, shape: str, expected: str
) -> None:
    result = _run(INSPECT, credentials, **{env.SHAPE: shape})
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1])["shapes"] == [expected]


def test_an_unknown_shape_is_refused_by_name(credentials: Path) -> None:
    result = _run(INSPECT, credentials, **{env.SHAPE: "sawtooth"})
    assert result.returncode != 0
    assert "sawtooth" in result.stderr


def test_locust_lists_the_user_classes(credentials: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--list"],
        cwd=ROOT,
        env={**os.environ, env.CREDENTIALS: str(credentials)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "Reader" in result.stdout
    assert "Planner" in result.stdout
    assert "Syncer" in result.stdout
