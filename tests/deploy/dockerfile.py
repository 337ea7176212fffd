"""The Dockerfile and .dockerignore, read as instructions and patterns."""

from __future__ import annotations

import fnmatch
import json
import shlex
from dataclasses import dataclass
from pathlib import Path

from .manifests import ROOT

DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"


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


def image_cmd() -> list[str]:
    """The runtime stage's CMD (exec form)."""
    cmds = [i for i in dockerfile_stages()[-1] if i.keyword == "CMD"]
    assert cmds, "the runtime stage has a CMD"
    argv = exec_form(cmds[-1].args)
    assert argv is not None, "CMD in exec form, so that the process gets SIGTERM"
    return argv


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
        pat = (pattern[1:] if negate else pattern).strip("/")
        parts = relpath.split("/")
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        hit = any(
            fnmatch.fnmatchcase(p, pat) or fnmatch.fnmatchcase(p, pat.removeprefix("**/"))
            for p in prefixes
        )
        if hit:
            excluded = not negate
    return excluded
