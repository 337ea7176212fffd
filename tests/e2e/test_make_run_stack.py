"""`make run` as a newcomer meets it, and the README's commands against it, as written.

The stack is `python -m devstack up` (what `make run` runs) on the repository's Procfile, in a
terminal of its own (a pseudo-terminal), with the Procfile's ports moved to free ones and no
TASKPIPE_* setting but those ports, a database and a Redis database of its own. The README's
"First five minutes" blocks and the `taskpipe` lines of "Operating the workers" then run
against it; the only edits are that host and those ports, and the pasted link.
"""

from __future__ import annotations

import asyncio
import json
import os
import pty
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from devstack.machine import RedisClaim, free_port, pid_alive
from tests.support.worker import ROOT

pytestmark = pytest.mark.worker

README = ROOT / "README.md"
API_PORT, FLOWER_PORT, MAIL_PORT = 8000, 5555, 1025  # what the README and the Procfile say


class Terminal:
    """A process on a pseudo-terminal of its own, its output collected as it comes."""

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # pragma: no cover - the child
            os.chdir(ROOT)
            os.execve(argv[0], argv, env)
        self._output = bytearray()
        self._lock = threading.Lock()
        self.returncode: int | None = None
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        while True:
            try:
                chunk = os.read(self.fd, 65536)
            except OSError:
                return
            if not chunk:
                return
            with self._lock:
                self._output += chunk

    @property
    def output(self) -> str:
        with self._lock:
            return self._output.decode(errors="replace")

    def wait_for(self, pattern: str, timeout: float) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if match := re.search(pattern, self.output):
                return match
            if self.poll() is not None:
                break
            time.sleep(0.2)
        raise AssertionError(f"no {pattern!r} in the terminal:\n{self.output[-6000:]}")

    def type(self, text: str) -> None:
        os.write(self.fd, text.encode())

    def poll(self) -> int | None:
        if self.returncode is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        while (returncode := self.poll()) is None:
            if time.monotonic() > deadline:
                raise AssertionError(f"still running after {timeout}s:\n{self.output[-4000:]}")
            time.sleep(0.2)
        return returncode


@dataclass
class Stack:
    terminal: Terminal
    data_dir: Path
    api: str
    flower: str
    env: dict[str, str]

    @property
    def state_file(self) -> Path:
        return self.data_dir / "stack.json"


def bare_environment() -> dict[str, str]:
    return {name: value for name, value in os.environ.items() if not name.startswith("TASKPIPE_")}


def on_free_ports(procfile: str, api: int, mail: int) -> str:
    for fixed, free in ((API_PORT, api), (MAIL_PORT, mail)):
        assert f"--port {fixed}" in procfile, f"the Procfile no longer says --port {fixed}"
        procfile = procfile.replace(f"--port {fixed}", f"--port {free}")
    return procfile


async def _drop_database(name: str) -> None:
    url = make_url(os.environ["TASKPIPE_DATABASE_URL"]).set(drivername="postgresql")
    connection = await asyncpg.connect(url.set(database="postgres").render_as_string(False))
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await connection.close()


@pytest.fixture(scope="module")
def stack(database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    root = tmp_path_factory.mktemp("stack")
    api, flower, mail = free_port(), free_port(), free_port()
    procfile = root / "Procfile"
    procfile.write_text(on_free_ports((ROOT / "Procfile").read_text(), api, mail))
    claim = RedisClaim(os.environ["TASKPIPE_REDIS_URL"], owner=f"stack-test-{uuid.uuid4()}")
    database_name = f"taskpipe_stack_{uuid.uuid4().hex[:10]}"
    env = {
        **bare_environment(),  # TASKPIPE_ENV unset: devstack makes it development
        "TASKPIPE_DATABASE_URL": os.environ["TASKPIPE_DATABASE_URL"],
        "TASKPIPE_REDIS_URL": claim.url(),
        "TASKPIPE_FLOWER_PORT": str(flower),
        "TASKPIPE_SMTP_PORT": str(mail),
        "TASKPIPE_PUBLIC_URL": f"http://127.0.0.1:{api}",
        "TASKPIPE_PASSWORD_HASH_MEMORY_KIB": "1024",
        "TASKPIPE_PASSWORD_HASH_ITERATIONS": "1",
    }
    data_dir = root / "data"
    terminal = Terminal(
        [
            *(sys.executable, "-m", "devstack", "up", "--procfile", str(procfile)),
            *("--data-dir", str(data_dir), "--database", database_name),
        ],
        env,
    )
    try:
        terminal.wait_for(r"Taskpipe is up", timeout=120)
        yield Stack(
            terminal, data_dir, f"http://127.0.0.1:{api}", f"http://127.0.0.1:{flower}", env
        )
    finally:
        if terminal.poll() is None:
            terminal.type("\x03")
            try:
                terminal.wait(60)
            except AssertionError:
                os.kill(terminal.pid, signal.SIGKILL)
                terminal.wait(10)
        claim.release()
        asyncio.run(_drop_database(database_name))


def readme_section(title: str, level: int = 2) -> str:
    """The README's section `title` at heading `level`, up to the next heading as high."""
    text = README.read_text()
    start = text.index(f"\n{'#' * level} {title}\n")
    ends = [text.find(f"\n{'#' * n} ", start + 1) for n in range(2, level + 1)]
    return text[start : min((end for end in ends if end != -1), default=len(text))]


# The API sections whose examples continue the First five minutes' shell ($API, $AUTH, field).
CONTINUED_SECTIONS = ("Recurring tasks", "Webhooks", "Sync (the change feed)")


def bash_blocks(section: str) -> list[str]:
    return re.findall(r"^```bash\n(.*?)^```", section, flags=re.MULTILINE | re.DOTALL)


def for_this_stack(script: str, stack: Stack) -> str:
    return script.replace(f"http://127.0.0.1:{API_PORT}", stack.api).replace(
        f"http://127.0.0.1:{FLOWER_PORT}", stack.flower
    )


def cli_environment(stack: Stack) -> dict[str, str]:
    """What a person's shell has: no settings; the stack file of this stack, not the repo's."""
    return {**bare_environment(), "TASKPIPE_STACK_FILE": str(stack.state_file)}


def test_the_first_five_minutes_of_the_readme_work_as_written(stack: Stack) -> None:
    blocks = bash_blocks(readme_section("First five minutes"))
    link_block = next(index for index, block in enumerate(blocks) if block.startswith("LINK="))
    shell = subprocess.Popen(
        ["bash", "-euo", "pipefail", "-s"],
        cwd=ROOT,
        env=bare_environment(),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert shell.stdin is not None
    for block in blocks[:link_block]:
        shell.stdin.write(for_this_stack(block, stack) + "\necho\n")
    shell.stdin.flush()
    # The confirmation mail, printed by the mail catcher in the stack's terminal.
    stack.terminal.wait_for(r"Subject: Confirm your email address for Taskpipe", timeout=60)
    link = stack.terminal.wait_for(r"http://\S+/auth/verify-email\?token=[\w.-]+", timeout=10)
    pasted = re.sub(r"^LINK=.*$", f"LINK='{link.group(0)}'", blocks[link_block], flags=re.M)
    continued = [
        block for title in CONTINUED_SECTIONS for block in bash_blocks(readme_section(title, 3))
    ]
    for block in [pasted, *blocks[link_block + 1 :], *continued]:
        shell.stdin.write(for_this_stack(block, stack) + "\necho\n")
    output, _ = shell.communicate(timeout=120)

    assert shell.returncode == 0, output
    answers = json_answers(output)
    ready, registered, verified, me, assigned, listed = answers[:6]
    assert ready["status"] == "ready"
    assert registered["user"]["is_active"] is False
    assert verified["is_active"] is True
    assert me["email"] == "ada@example.com"
    assert assigned["categories"][0]["name"] == "Work"
    assert [task["title"] for task in listed["items"]] == ["Write the report"]
    completed, skipped, test_delivery, deliveries, synced = answers[-5:]
    assert completed["next_occurrence"]["due_date"] == "2030-01-10T08:00:00Z"
    assert skipped["status"] == 409
    assert test_delivery["event"] == "webhook.test"
    assert deliveries["items"][0]["id"] == test_delivery["id"]
    assert {change["kind"] for change in synced["changes"]} <= {"task", "category"}
    # Flower learns a job's end from the worker's events, a moment after the mail went out:
    # ask again (the same block) until it has.
    flower_block = for_this_stack(blocks[-1], stack)
    for _ in range(20):
        jobs = [line.split() for line in output.splitlines() if line.startswith("taskpipe.")]
        if ["taskpipe.email.send_verification", "SUCCESS"] in jobs:
            break
        time.sleep(0.5)
        output = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", flower_block],
            env=bare_environment(),
            capture_output=True,
            text=True,
            timeout=30,
        ).stdout
    assert ["taskpipe.email.send_verification", "SUCCESS"] in jobs, output


def json_answers(output: str) -> list[dict[str, object]]:
    """Every JSON object in `output` (curl prints its answers back to back)."""
    decoder = json.JSONDecoder()
    answers, position = [], output.find("{")
    while position != -1:
        answer, end = decoder.raw_decode(output, position)
        answers.append(answer)
        position = output.find("{", end)
    return answers


def test_the_taskpipe_commands_of_the_readme_work_beside_it(stack: Stack) -> None:
    lines = [
        line.split("  #")[0].strip()
        for block in bash_blocks(readme_section("Background jobs"))
        for line in block.splitlines()
        if line.startswith(".venv/bin/taskpipe ")
    ]
    assert len(lines) >= 7, lines
    for line in lines:
        argv = shlex.split(line)
        if "users" in argv and "--password" not in argv:
            answered = Terminal([str(ROOT / argv[0]), *argv[1:]], cli_environment(stack))
            answered.wait_for(r"Password: ", timeout=30)
            answered.type("Correct-Horse-9\n")
            answered.wait_for(r"Password again: ", timeout=30)
            answered.type("Correct-Horse-9\n")
            assert answered.wait(60) == 0, answered.output
            assert '"verified": true' in answered.output
            continue
        done = subprocess.run(
            argv,
            cwd=ROOT,
            env=cli_environment(stack),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, f"{line}\n{done.stdout}\n{done.stderr}"
        assert "Traceback" not in done.stderr
        answer = json.loads(done.stdout)  # readable: indented JSON, one command's answer
        assert answer, line
        if argv[1] == "check":
            assert {answer[name] for name in ("database", "redis", "smtp")} == {"ok"}
            assert answer["connect"] == json.loads(stack.state_file.read_text())["connect"]


def test_the_stack_tells_where_it_runs(stack: Stack) -> None:
    state = json.loads(stack.state_file.read_text())
    assert state["environment"]["TASKPIPE_ENV"] == "development"
    assert state["urls"]["api"] == stack.api
    assert stack.state_file.stat().st_mode & 0o077 == 0  # URLs may carry passwords
    done = subprocess.run(
        [sys.executable, "-m", "devstack", "status", "--data-dir", str(stack.data_dir)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["connect"] == state["connect"]
    banner = stack.terminal.output
    assert f"API         {stack.api}" in banner
    assert "user admin, password taskpipe" in banner
    assert state["connect"]["psql"] in banner


def test_ctrl_c_stops_everything_without_an_error(stack: Stack) -> None:
    pids = [int(pid) for pid in re.findall(r"started \(pid=(\d+)\)", stack.terminal.output)]
    assert len(pids) == 5, stack.terminal.output[-3000:]
    stack.terminal.type("\x03")
    assert stack.terminal.wait(60) == 0
    assert "devstack: stopped" in stack.terminal.output
    assert not stack.state_file.exists()
    assert not any(pid_alive(pid) for pid in pids)
