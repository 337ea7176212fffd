"""The numbers of a load-test run, from the files it leaves (Locust-free, unit-tested).

Inputs, all in one report directory:

* `requests-<pid>.csv`, one row per request from each Locust process (start time, method, route
  template, response time, ok), written by the locustfile when `TASKPIPE_LOADTEST_REQUEST_LOG` is
  set. Percentiles are computed exactly from these rows (nearest rank), per window: Locust's own
  tables round response times above 100 ms and only give whole-run or 10-second figures.
* `locust_stats_history.csv` (Locust `--csv`): the user count second by second, which says when
  the ramp ended.
* `cpu.csv` (written by `loadtests.run`): CPU used per second by each process group, in cores.
* `locust_failures.csv` (Locust `--csv`): failures grouped by message.

Windows: the ramp runs from the first request until the user count reaches its target plus
`settle` seconds (the last users' first requests); the steady state is everything after.
"""

from __future__ import annotations

import csv
import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

P95_TARGET_MS = 200.0
SETTLE_SECONDS = 10.0
TIMELINE_BUCKET_SECONDS = 10
AGGREGATED = "Aggregated"


@dataclass(frozen=True, slots=True)
class Sample:
    start: float
    method: str
    name: str
    ms: float
    ok: bool

    @property
    def route(self) -> str:
        return f"{self.method} {self.name}"


@dataclass(frozen=True, slots=True)
class Window:
    name: str
    start: float
    end: float

    def contains(self, moment: float) -> bool:
        return self.start <= moment < self.end


def read_samples(paths: Iterable[Path]) -> list[Sample]:
    samples: list[Sample] = []
    for path in paths:
        with path.open(newline="") as handle:
            for row in csv.DictReader(handle):
                samples.append(
                    Sample(
                        float(row["start"]),
                        row["method"],
                        row["name"],
                        float(row["response_ms"]),
                        row["ok"] == "1",
                    )
                )
    samples.sort(key=lambda sample: sample.start)
    return samples


def read_user_counts(history_csv: Path) -> list[tuple[float, int]]:
    """(timestamp, users) from the Aggregated rows of Locust's stats history."""
    if not history_csv.exists():
        return []
    with history_csv.open(newline="") as handle:
        return [
            (float(row["Timestamp"]), int(row["User Count"]))
            for row in csv.DictReader(handle)
            if row["Name"] == AGGREGATED
        ]


def read_cpu(cpu_csv: Path) -> list[tuple[float, str, float]]:
    if not cpu_csv.exists():
        return []
    with cpu_csv.open(newline="") as handle:
        return [
            (float(row["time"]), row["group"], float(row["cores"]))
            for row in csv.DictReader(handle)
        ]


def read_failures(failures_csv: Path) -> list[dict[str, Any]]:
    if not failures_csv.exists():
        return []
    with failures_csv.open(newline="") as handle:
        return [
            {
                "method": row["Method"],
                "name": row["Name"],
                "error": row["Error"],
                "occurrences": int(row["Occurrences"]),
            }
            for row in csv.DictReader(handle)
        ]


def percentile(ordered: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile of an ascending sequence: the smallest value with at least
    `fraction` of the values at or below it."""
    if not ordered:
        return math.nan
    rank = max(math.ceil(fraction * len(ordered)), 1)
    return ordered[rank - 1]


def _stats(samples: Sequence[Sample], seconds: float) -> dict[str, Any]:
    times = sorted(sample.ms for sample in samples)
    failures = sum(1 for sample in samples if not sample.ok)
    return {
        "requests": len(samples),
        "failures": failures,
        "rps": round(len(samples) / seconds, 1) if seconds > 0 else 0.0,
        "p50_ms": _ms(percentile(times, 0.50)),
        "p95_ms": _ms(percentile(times, 0.95)),
        "p99_ms": _ms(percentile(times, 0.99)),
        "max_ms": _ms(times[-1] if times else math.nan),
        "mean_ms": _ms(sum(times) / len(times) if times else math.nan),
    }


def _ms(value: float) -> float | None:
    return None if math.isnan(value) else round(value, 1)


def window_stats(samples: Sequence[Sample], window: Window) -> dict[str, Any]:
    """Overall and per-route figures of the requests that started inside `window`."""
    inside = [sample for sample in samples if window.contains(sample.start)]
    seconds = max(window.end - window.start, 0.0)
    by_route: dict[str, list[Sample]] = defaultdict(list)
    for sample in inside:
        by_route[sample.route].append(sample)
    return {
        "start": round(window.start, 3),
        "end": round(window.end, 3),
        "seconds": round(seconds, 1),
        **_stats(inside, seconds),
        "routes": {route: _stats(group, seconds) for route, group in sorted(by_route.items())},
    }


def ramp_end(user_counts: Sequence[tuple[float, int]], target: int) -> float | None:
    """When the user count first reached `target` (Locust's history has one row a second)."""
    for moment, users in user_counts:
        if users >= target:
            return moment
    return None


def plain_windows(
    samples: Sequence[Sample],
    user_counts: Sequence[tuple[float, int]],
    target_users: int,
    settle: float = SETTLE_SECONDS,
) -> list[Window]:
    """Ramp, steady state and the whole run of a plain -u/-r/-t run."""
    if not samples:
        return []
    first, last = samples[0].start, samples[-1].start + 1e-3
    reached = ramp_end(user_counts, target_users)
    boundary = min(reached + settle, last) if reached is not None else last
    return [
        Window("ramp", first, boundary),
        Window("steady", boundary, last),
        Window("whole", first, last),
    ]


def staged_windows(
    samples: Sequence[Sample], stage_ends: Sequence[tuple[str, float]], settle: float
) -> list[Window]:
    """Windows from a shape's plan: (name, seconds since the start at which it ends).

    The stage named "steady" starts `settle` seconds late (the last users' first requests);
    the others start when the previous one ends, so a surge is measured from its onset. The
    last stage is open-ended.
    """
    if not samples:
        return []
    first, last = samples[0].start, samples[-1].start + 1e-3
    windows: list[Window] = []
    begin = first
    for index, (name, ends) in enumerate(stage_ends):
        end = last if index == len(stage_ends) - 1 else min(first + ends, last)
        start = begin + settle if name == "steady" else begin
        windows.append(Window(name, min(start, end), end))
        begin = end
    windows.append(Window("whole", first, last))
    return windows


def cpu_by_window(
    cpu: Sequence[tuple[float, str, float]], windows: Sequence[Window]
) -> dict[str, dict[str, float]]:
    """Mean CPU of each process group inside each window, in cores (1.0 = one core busy)."""
    result: dict[str, dict[str, float]] = {}
    for window in windows:
        totals: dict[str, list[float]] = defaultdict(list)
        for moment, group, cores in cpu:
            if window.contains(moment):
                totals[group].append(cores)
        result[window.name] = {
            group: round(sum(values) / len(values), 2) for group, values in sorted(totals.items())
        }
    return result


def timeline(
    samples: Sequence[Sample],
    user_counts: Sequence[tuple[float, int]],
    bucket: int = TIMELINE_BUCKET_SECONDS,
) -> list[dict[str, Any]]:
    """Users, requests/s, p95 and failures per `bucket` seconds: what happened when."""
    if not samples:
        return []
    first = samples[0].start
    buckets: dict[int, list[Sample]] = defaultdict(list)
    for sample in samples:
        buckets[int((sample.start - first) // bucket)].append(sample)
    rows = []
    for index in range(max(buckets) + 1):
        group = buckets.get(index, [])
        at = first + index * bucket
        counts = [count for moment, count in user_counts if at <= moment < at + bucket]
        times = sorted(sample.ms for sample in group)
        rows.append(
            {
                "t": index * bucket,
                "users": max(counts) if counts else None,
                "rps": round(len(group) / bucket, 1),
                "p95_ms": _ms(percentile(times, 0.95)),
                "failures": sum(1 for sample in group if not sample.ok),
            }
        )
    return rows


def verdict(
    windows: dict[str, dict[str, Any]], p95_target_ms: float = P95_TARGET_MS
) -> dict[str, Any]:
    """Pass when the steady state has requests, its p95 is under target and nothing failed."""
    reasons = []
    steady = windows.get("steady")
    whole = windows.get("whole")
    if not steady or not steady["requests"]:
        reasons.append("no steady state: the run ended before the ramp did")
    elif steady["p95_ms"] is None or steady["p95_ms"] >= p95_target_ms:
        reasons.append(f"steady-state p95 {steady['p95_ms']} ms >= {p95_target_ms:g} ms")
    if whole and whole["failures"]:
        reasons.append(f"{whole['failures']} of {whole['requests']} requests failed")
    return {"passed": not reasons, "p95_target_ms": p95_target_ms, "reasons": reasons}


def summarize(
    report_dir: Path,
    *,
    target_users: int,
    stage_ends: Sequence[tuple[str, float]] | None = None,
    settle: float = SETTLE_SECONDS,
    p95_target_ms: float = P95_TARGET_MS,
    csv_prefix: str = "locust",
) -> dict[str, Any]:
    """Everything `summary.json` holds except the run's own description."""
    samples = read_samples(sorted(report_dir.glob("requests-*.csv")))
    user_counts = read_user_counts(report_dir / f"{csv_prefix}_stats_history.csv")
    if stage_ends:
        windows = staged_windows(samples, stage_ends, settle)
    else:
        windows = plain_windows(samples, user_counts, target_users, settle)
    figures = {window.name: window_stats(samples, window) for window in windows}
    return {
        "verdict": verdict(figures, p95_target_ms),
        "windows": figures,
        "cpu_cores": cpu_by_window(read_cpu(report_dir / "cpu.csv"), windows),
        "failures": read_failures(report_dir / f"{csv_prefix}_failures.csv"),
        "timeline": timeline(samples, user_counts),
    }
