"""Liveness check for k8s and compose: `python -m worker.healthcheck worker|beat`.

Exits 0 when the component's heartbeat file was touched recently, 1 otherwise.
"""

from __future__ import annotations

import sys
import time
from typing import cast

from worker.heartbeat import STALE_AFTER_SECONDS, Component, heartbeat_path


def is_alive(component: Component, now: float | None = None) -> bool:
    path = heartbeat_path(component)
    try:
        age = (now or time.time()) - path.stat().st_mtime
    except FileNotFoundError:
        return False
    return age <= STALE_AFTER_SECONDS[component]


def main(argv: list[str]) -> int:
    if len(argv) != 1 or argv[0] not in STALE_AFTER_SECONDS:
        print("usage: python -m worker.healthcheck worker|beat", file=sys.stderr)
        return 2
    component = cast(Component, argv[0])
    alive = is_alive(component)
    print(f"{component}: {'alive' if alive else 'stale or missing heartbeat'}")
    return 0 if alive else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
