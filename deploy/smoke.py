"""`make compose-smoke`: build the image, start the compose stack, drive it, tear it down.

    .venv/bin/python -m deploy.smoke [--keep]

Steps (each timed): build the image; `docker compose up -d --wait` (every healthcheck green);
the scenario through the published ports (ready, register, the verification job's SUCCESS in
Flower, the mailed link, login, a task's round trip, /metrics with the metrics token, read-only
root filesystems); a restart of api and worker under a request loop (deploy/rolling.py); then
each Taskpipe service stopped alone, which must end with exit code 0 well inside its grace
period (the signal reached the process and it shut down by itself); and `down --volumes`.
Exits 1 with the reason and the services' last log lines on any failure.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from collections.abc import Callable, Sequence

from deploy import scenario
from deploy.client import expect
from deploy.engine import ComposeProject, SmokeFailure, docker_environment
from deploy.rolling import restart_under_load
from deploy.stack import PORT_VARIABLES, Stack
from devstack.machine import free_port

PROJECT = "taskpipe-smoke"
IMAGE = "taskpipe:dev"
BASE_IMAGE = "python:3.11-slim-bookworm"  # the Dockerfile's FROM
TASKPIPE_SERVICES = ("api", "worker", "beat", "flower")
# A graceful stop of an idle service takes about a second; Docker's SIGKILL comes at 30 s.
STOP_WITHIN_SECONDS = 10.0


def step(name: str, timings: dict[str, float], action: Callable[[], object]) -> object:
    started = time.monotonic()
    outcome = action()
    timings[name] = time.monotonic() - started
    print(f"compose-smoke: {name}: ok ({timings[name]:.1f} s)", flush=True)
    return outcome


def image_sizes(project: ComposeProject) -> tuple[int, int]:
    """(the image, the base image it starts from) in bytes: their difference is ours."""

    def size(image: str) -> int:
        inspect = subprocess.run(
            ["docker", "image", "inspect", "--format", "{{.Size}}", image],
            env=project.env,
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        )
        return int(inspect.stdout.strip())

    return size(IMAGE), size(BASE_IMAGE)


def stop_each_gracefully(project: ComposeProject) -> dict[str, float]:
    """`docker compose stop` one Taskpipe service at a time: exit 0 and quick, or fail."""
    took = {}
    for service in TASKPIPE_SERVICES:
        started = time.monotonic()
        project.run("stop", "--timeout", "30", service)
        took[service] = time.monotonic() - started
        code = project.container_state(service)["ExitCode"]
        if code != 0 or took[service] > STOP_WITHIN_SECONDS:
            raise SmokeFailure(
                f"{service} stopped with exit code {code} after {took[service]:.1f} s "
                f"(want 0 within {STOP_WITHIN_SECONDS:.0f} s: SIGTERM must reach the process)"
            )
    return took


def run_smoke(project: ComposeProject, timings: dict[str, float]) -> None:
    step("build", timings, lambda: project.run("build"))
    step(
        "up --wait (all healthy)",
        timings,
        lambda: project.run("up", "--detach", "--wait", "--wait-timeout", "300"),
    )
    stack = Stack.connect(project)
    try:
        email = scenario.new_email("smoke")
        step("ready", timings, lambda: scenario.ready(stack))
        step(
            "register",
            timings,
            lambda: expect(scenario.register(stack.api, email), 201, "register"),
        )
        step(
            "verification job SUCCESS (Flower)",
            timings,
            lambda: scenario.verification_job_succeeds(stack),
        )
        step("verify via the mailed link", timings, lambda: scenario.verify_by_mail(stack, email))
        user = scenario.log_in(stack, email)
        step(
            "task create/list/PATCH/delete", timings, lambda: scenario.task_round_trip(stack, user)
        )
        step("/metrics with the token", timings, lambda: scenario.metrics_cover_the_platform(stack))
        step(
            "read-only root filesystems",
            timings,
            lambda: scenario.root_filesystem_is_read_only(stack),
        )
        load = restart_under_load(stack, user)
        timings["restart under load"] = project.timings["restart api worker"]
        print(
            f"compose-smoke: restart api worker under load: ok ({load.requests} requests, "
            f"{load.retried} retried by the client, 0 failed, {len(load.created)} creates all "
            f"present, {len(load.registered)} verification mails all delivered; restart took "
            f"{project.timings['restart api worker']:.1f} s)",
            flush=True,
        )
        stops = stop_each_gracefully(project)
        print(
            "compose-smoke: graceful stops (exit 0): "
            + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in stops.items()),
            flush=True,
        )
    finally:
        stack.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deploy.smoke", description=__doc__)
    parser.add_argument("--keep", action="store_true", help="leave the stack running afterwards")
    args = parser.parse_args(argv)
    started = time.monotonic()
    timings: dict[str, float] = {}
    try:
        env = docker_environment()
    except SmokeFailure as exc:
        print(f"compose-smoke: FAILED: {exc}", file=sys.stderr)
        return 1
    env |= {variable: str(free_port()) for variable in PORT_VARIABLES}
    env["TASKPIPE_PUBLIC_URL"] = f"http://127.0.0.1:{env['API_HOST_PORT']}"
    project = ComposeProject(PROJECT, env)
    project.down()  # whatever an interrupted run left behind
    failed = False
    try:
        run_smoke(project, timings)
    except Exception as exc:  # any failure: report it with the stack's state, then tear down
        failed = True
        print(f"compose-smoke: FAILED: {exc!r}", file=sys.stderr)
        subprocess.run(project.argv("ps", "--all"), env=env, check=False)
        subprocess.run(project.argv("logs", "--tail", "40"), env=env, check=False)
    finally:
        if not args.keep:
            step("down --volumes", timings, project.down)
    if not failed:
        size, base = image_sizes(project)
        print(
            f"compose-smoke: PASSED in {time.monotonic() - started:.0f} s; image {IMAGE} "
            f"{size / 1e6:.0f} MB: {BASE_IMAGE} {base / 1e6:.0f} MB + Taskpipe's layers "
            f"{(size - base) / 1e6:.0f} MB",
            flush=True,
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
