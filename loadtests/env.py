"""Environment variables through which `loadtests.run` talks to the locustfile (Locust-free).

Each can also be set by hand when running `locust -f loadtests/locustfile.py` directly.
"""

from __future__ import annotations

import os
import re

CREDENTIALS = "TASKPIPE_LOADTEST_CREDENTIALS"
"""The credentials CSV from `loadtests.seed` (default `.taskpipe/loadtest-credentials.csv`)."""
REQUEST_LOG = "TASKPIPE_LOADTEST_REQUEST_LOG"
"""A directory: each Locust process writes `requests-<pid>.csv` there (one row per request), from
which `loadtests.summary` computes exact percentiles for the ramp and the steady state."""
SHAPE = "TASKPIPE_LOADTEST_SHAPE"
"""`spike` or `soak` to run a `loadtests.shapes` load shape instead of plain -u/-r/-t."""
WORKERS = "TASKPIPE_LOADTEST_WORKERS"
"""In a distributed run (`--master`/`--worker` by hand), the number of workers, so each worker
takes its own slice of the accounts; `--processes N` needs nothing, Locust tells the workers N."""

THINK = "TASKPIPE_LOADTEST_THINK"
"""`MIN,MAX` seconds between two actions of a simulated user (default in the locustfile)."""

SPIKE_PEAK_USERS = "TASKPIPE_SPIKE_PEAK_USERS"
SPIKE_SPAWN_RATE = "TASKPIPE_SPIKE_SPAWN_RATE"
SPIKE_PHASES = "TASKPIPE_SPIKE_PHASES"
SOAK_DURATION = "TASKPIPE_SOAK_DURATION"


def think_time(default: tuple[float, float]) -> tuple[float, float]:
    """`TASKPIPE_LOADTEST_THINK` as (min, max) seconds, else `default`."""
    text = os.environ.get(THINK, "").strip()
    if not text:
        return default
    try:
        low, high = (float(part) for part in text.split(","))
    except ValueError:
        raise ValueError(f"{THINK}={text!r}: expected MIN,MAX seconds, e.g. 2,8") from None
    if not 0 <= low <= high:
        raise ValueError(f"{THINK}={text!r}: expected 0 <= MIN <= MAX")
    return low, high


_DURATION = re.compile(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s?)?")


def parse_duration(text: str) -> int:
    """Seconds in `90`, `90s`, `3m`, `1h30m`, the forms Locust's `-t` takes."""
    match = _DURATION.fullmatch(text.strip().lower())
    if not text.strip() or match is None:
        raise ValueError(f"not a duration: {text!r} (use e.g. 90s, 3m, 1h30m)")
    hours, minutes, seconds = (int(part or 0) for part in match.groups())
    return hours * 3600 + minutes * 60 + seconds
