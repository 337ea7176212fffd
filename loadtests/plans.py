"""The user count over time of the spike and soak shapes, as plain data (Locust-free).

`loadtests.shapes` turns a plan into a Locust `LoadTestShape`; `loadtests.run` reads the same plan
to know how long a shaped run lasts and which user count is its peak.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from loadtests import env

DEFAULT_SPIKE_PHASES = "2m,1m,2m"
DEFAULT_SPIKE_RATE = 100.0
DEFAULT_SOAK_DURATION = "1h"
SHAPES = ("spike", "soak")


@dataclass(frozen=True)
class Stage:
    until: float
    """Seconds since the start at which this stage ends."""
    users: int
    spawn_rate: float


def spike_plan(users: int, rate: float) -> list[Stage]:
    """Ramp to `users` and hold, surge to the peak, drop back to `users` and hold.

    The surge models every client opening the app at once (a push notification, the end of an
    outage); the last phase shows whether latency recovers once it has passed. Peak users
    `TASKPIPE_SPIKE_PEAK_USERS` (default 3 x users), surge rate `TASKPIPE_SPIKE_SPAWN_RATE`
    (default 100/s), phases `TASKPIPE_SPIKE_PHASES` = hold,surge,recovery (default 2m,1m,2m).
    """
    phases = os.environ.get(env.SPIKE_PHASES) or DEFAULT_SPIKE_PHASES
    parts = [env.parse_duration(part) for part in phases.split(",")]
    if len(parts) != 3:
        raise ValueError(
            f"{env.SPIKE_PHASES} needs hold,surge,recovery, e.g. {DEFAULT_SPIKE_PHASES}"
        )
    hold, surge, recovery = parts
    peak = int(os.environ.get(env.SPIKE_PEAK_USERS) or users * 3)
    spike_rate = float(os.environ.get(env.SPIKE_SPAWN_RATE) or DEFAULT_SPIKE_RATE)
    ramp = users / rate
    return [
        Stage(ramp + hold, users, rate),
        Stage(ramp + hold + surge, peak, spike_rate),
        Stage(ramp + hold + surge + recovery, users, spike_rate),
    ]


def soak_plan(users: int, rate: float) -> list[Stage]:
    """Ramp to `users` and hold for `TASKPIPE_SOAK_DURATION` (default 1h): leaks, pool
    exhaustion, token expiry (access tokens live an hour, so the refresh path runs for real),
    cache and table growth."""
    hold = env.parse_duration(os.environ.get(env.SOAK_DURATION) or DEFAULT_SOAK_DURATION)
    return [Stage(users / rate + hold, users, rate)]


def plan_for(shape: str, users: int, rate: float) -> list[Stage]:
    if shape == "spike":
        return spike_plan(users, rate)
    if shape == "soak":
        return soak_plan(users, rate)
    raise ValueError(f"unknown shape {shape!r}: choose one of {', '.join(SHAPES)}")
