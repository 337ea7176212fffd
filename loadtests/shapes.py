"""Locust load shapes for a spike or a soak, chosen without editing code.

    TASKPIPE_LOADTEST_SHAPE=spike locust -f loadtests/locustfile.py -u 500 -r 10 ...
    python -m loadtests.run --shape spike --users 500        (the same, orchestrated)

Both read `-u`/`-r` (`use_common_options`), so the command line stays that of a plain run; the
plans themselves, and the variables that tune them, are in `loadtests/plans.py`.
"""

from __future__ import annotations

import os

from locust import LoadTestShape

from loadtests import env
from loadtests.plans import SHAPES, Stage, plan_for


class PlannedShape(LoadTestShape):
    abstract = True
    use_common_options = True
    shape = ""

    def __init__(self) -> None:
        super().__init__()
        self._plan: list[Stage] | None = None

    def plan(self) -> list[Stage]:
        if self._plan is None:
            assert self.runner is not None
            options = self.runner.environment.parsed_options
            users = int(getattr(options, "num_users", None) or 100)
            rate = float(getattr(options, "spawn_rate", None) or 10)
            self._plan = plan_for(self.shape, users, rate)
        return self._plan

    def tick(self) -> tuple[int, float] | None:
        elapsed = self.get_run_time()
        for stage in self.plan():
            if elapsed < stage.until:
                return stage.users, stage.spawn_rate
        return None


class SpikeShape(PlannedShape):
    """See `loadtests.plans.spike_plan`."""

    shape = "spike"


class SoakShape(PlannedShape):
    """See `loadtests.plans.soak_plan`."""

    shape = "soak"


def selected_shape() -> type[PlannedShape] | None:
    """The shape named by `TASKPIPE_LOADTEST_SHAPE`, or None for a plain -u/-r/-t run."""
    name = (os.environ.get(env.SHAPE) or "").strip().lower()
    if not name:
        return None
    if name not in SHAPES:
        raise SystemExit(f"{env.SHAPE}={name!r}: choose one of {', '.join(SHAPES)}, or unset it")
    return SpikeShape if name == "spike" else SoakShape
