"""Run Flower behind basic auth from settings: `python -m worker.flower`.

The credentials go through Flower's environment (FLOWER_BASIC_AUTH), not argv, so they do not
show in `ps`.
"""

from __future__ import annotations

import os
import sys

from common.config import get_settings


def flower_command() -> tuple[list[str], dict[str, str]]:
    settings = get_settings()
    env = dict(os.environ)
    env["FLOWER_BASIC_AUTH"] = (
        f"{settings.flower_user}:{settings.flower_password.get_secret_value()}"
    )
    argv = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "worker.app",
        "flower",
        f"--address={settings.flower_address}",
        f"--port={settings.flower_port}",
    ]
    return argv, env


def main() -> None:  # pragma: no cover - replaces the process
    argv, env = flower_command()
    os.execve(sys.executable, argv, env)  # noqa: S606


if __name__ == "__main__":  # pragma: no cover
    main()
