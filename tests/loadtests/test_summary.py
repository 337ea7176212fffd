"""The summary maths on small fixed files, and the pieces around it (plans, plot, durations)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from loadtests import env
from loadtests.env import parse_duration
from loadtests.options import parse_args
from loadtests.plans import plan_for, soak_plan, spike_plan
from loadtests.plot import ladder_rows, largest_passing, write_ladder
from loadtests.services import cache_ratios
from loadtests.step import stage_ends, unknown_routes
from loadtests.summary import (
    Sample,
    Window,
    percentile,
    plain_windows,
    ramp_end,
    read_samples,
    summarize,
    timeline,
    verdict,
    window_stats,
)

T0 = 1_800_000_000.0
# 20 requests a second apart: 10 during the ramp (users 1..10), 10 in the steady state.
REQUESTS = "start,method,name,response_ms,ok\n" + "".join(
    f"{T0 + i:.3f},{'GET' if i % 2 else 'POST'},"
    f"{'/api/v1/tasks' if i % 2 else '/api/v1/auth/refresh'},{(i + 1) * 10:.2f},"
    f"{0 if i == 3 else 1}\n"
    for i in range(20)
)
HISTORY_HEADER = (
    "Timestamp,User Count,Type,Name,Requests/s,Failures/s,50%,66%,75%,80%,90%,95%,98%,99%,"
    "99.9%,99.99%,100%,Total Request Count,Total Failure Count,Total Median Response Time,"
    "Total Average Response Time,Total Min Response Time,Total Max Response Time,"
    "Total Average Content Size\n"
)
HISTORY = HISTORY_HEADER + "".join(
    f"{int(T0) + i},{min(i + 1, 10)},,Aggregated,1.0,0.0,"
    + ",".join(["10"] * 11)
    + f",{i + 1},0,10,10,10,10,100\n"
    + f"{int(T0) + i},{min(i + 1, 10)},GET,/api/v1/tasks,1.0,0.0,"
    + ",".join(["10"] * 11)
    + ",1,0,10,10,10,10,100\n"
    for i in range(20)
)
CPU = "time,group,cores\n" + "".join(
    f"{T0 + i + 0.5:.3f},app,{0.5 if i < 9 else 1.5}\n{T0 + i + 0.5:.3f},locust,0.2\n"
    for i in range(20)
)
FAILURES = "Method,Name,Error,Occurrences\nGET,/api/v1/tasks,expected 200/304 got 500,1\n"


@pytest.fixture
def report(tmp_path: Path) -> Path:
    (tmp_path / "requests-1.csv").write_text(REQUESTS)
    (tmp_path / "locust_stats_history.csv").write_text(HISTORY)
    (tmp_path / "cpu.csv").write_text(CPU)
    (tmp_path / "locust_failures.csv").write_text(FAILURES)
    return tmp_path


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 21)]
    assert percentile(values, 0.50) == 10
    assert percentile(values, 0.95) == 19
    assert percentile(values, 0.99) == 20
    assert percentile(values, 0.01) == 1
    assert percentile([7.0], 0.95) == 7
    assert math.isnan(percentile([], 0.5))


def test_ramp_ends_when_the_user_count_reaches_the_target() -> None:
    counts = [(T0, 1), (T0 + 1, 5), (T0 + 2, 10), (T0 + 3, 10)]
    assert ramp_end(counts, 10) == T0 + 2
    assert ramp_end(counts, 11) is None


def test_ramp_and_steady_windows_from_the_history(report: Path) -> None:
    summary = summarize(report, target_users=10, settle=0.0)
    ramp, steady, whole = (summary["windows"][name] for name in ("ramp", "steady", "whole"))
    # users reach 10 at T0+9: requests 0..8 are the ramp, 9..19 the steady state
    assert (ramp["requests"], steady["requests"], whole["requests"]) == (9, 11, 20)
    assert ramp["failures"] == 1
    assert steady["failures"] == 0
    assert whole["failures"] == 1
    # steady response times are 100..200 ms
    assert steady["p50_ms"] == 150.0
    assert steady["p95_ms"] == 200.0
    assert steady["max_ms"] == 200.0
    assert steady["p99_ms"] == 200.0
    assert steady["mean_ms"] == 150.0
    assert steady["rps"] == round(11 / 10.001, 1)
    routes = steady["routes"]
    assert set(routes) == {"GET /api/v1/tasks", "POST /api/v1/auth/refresh"}
    assert routes["GET /api/v1/tasks"]["requests"] == 6  # 9, 11, 13, 15, 17, 19
    assert routes["GET /api/v1/tasks"]["p50_ms"] == 140.0  # 100, 120, [140], 160, 180, 200
    assert whole["p95_ms"] == 190.0
    assert summary["cpu_cores"]["steady"] == {"app": 1.5, "locust": 0.2}
    assert summary["cpu_cores"]["ramp"] == {"app": 0.5, "locust": 0.2}
    assert summary["failures"][0]["occurrences"] == 1


def test_settle_moves_the_start_of_the_steady_state(report: Path) -> None:
    summary = summarize(report, target_users=10, settle=5.0)
    assert summary["windows"]["ramp"]["requests"] == 14
    assert summary["windows"]["steady"]["requests"] == 6


def test_the_verdict_needs_a_fast_steady_state_and_no_failure(report: Path) -> None:
    summary = summarize(report, target_users=10, settle=0.0, p95_target_ms=250)
    assert summary["verdict"]["passed"] is False
    assert summary["verdict"]["reasons"] == ["1 of 20 requests failed"]
    slow = summarize(report, target_users=10, settle=0.0, p95_target_ms=200)
    assert "steady-state p95 200.0 ms >= 200 ms" in slow["verdict"]["reasons"]
    good = {"steady": {"requests": 5, "p95_ms": 120.0}, "whole": {"requests": 9, "failures": 0}}
    assert verdict(good)["passed"] is True
    assert verdict({"whole": {"requests": 1, "failures": 0}})["passed"] is False


def test_a_run_that_never_reached_its_users_has_no_steady_state(report: Path) -> None:
    summary = summarize(report, target_users=50, settle=0.0)
    assert summary["windows"]["steady"]["requests"] == 0
    assert summary["verdict"]["reasons"][0].startswith("no steady state")


def test_staged_windows_for_shapes(report: Path) -> None:
    stages = [("ramp", 5.0), ("steady", 10.0), ("surge", 15.0), ("recovery", 20.0)]
    summary = summarize(report, target_users=10, stage_ends=stages, settle=1.0)
    counts = {name: figures["requests"] for name, figures in summary["windows"].items()}
    # steady skips 1 s of settling; the surge and the recovery count from their onset
    assert counts == {"ramp": 5, "steady": 4, "surge": 5, "recovery": 5, "whole": 20}


def test_timeline_buckets(report: Path) -> None:
    samples = read_samples([report / "requests-1.csv"])
    rows = timeline(samples, [(T0 + i, min(i + 1, 10)) for i in range(20)], bucket=10)
    assert [row["t"] for row in rows] == [0, 10]
    assert [row["users"] for row in rows] == [10, 10]
    assert [row["rps"] for row in rows] == [1.0, 1.0]
    assert [row["failures"] for row in rows] == [1, 0]
    assert rows[1]["p95_ms"] == 200.0


def test_window_stats_of_an_empty_window() -> None:
    empty = window_stats([Sample(T0, "GET", "/x", 5.0, True)], Window("w", T0 + 10, T0 + 20))
    assert empty["requests"] == 0
    assert empty["p95_ms"] is None
    assert plain_windows([], [], 10) == []


def test_plans() -> None:
    assert soak_plan(100, 10)[0].until == 10 + 3600
    spike = spike_plan(100, 10)
    assert [stage.users for stage in spike] == [100, 300, 100]
    assert [stage.until for stage in spike] == [130, 190, 310]
    with pytest.raises(ValueError, match="unknown shape"):
        plan_for("sawtooth", 1, 1)


def test_spike_plan_reads_its_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(env.SPIKE_PHASES, "10s,5s,10s")
    monkeypatch.setenv(env.SPIKE_PEAK_USERS, "50")
    monkeypatch.setenv(env.SPIKE_SPAWN_RATE, "25")
    spike = spike_plan(10, 5)
    assert [(s.until, s.users, s.spawn_rate) for s in spike] == [
        (12, 10, 5),
        (17, 50, 25),
        (27, 10, 25),
    ]
    monkeypatch.setenv(env.SPIKE_PHASES, "10s,5s")
    with pytest.raises(ValueError, match="hold,surge,recovery"):
        spike_plan(10, 5)


def test_durations() -> None:
    assert [parse_duration(text) for text in ("90", "90s", "3m", "1h30m", "2h")] == [
        90,
        90,
        180,
        5400,
        7200,
    ]
    for wrong in ("", "3x", "m"):
        with pytest.raises(ValueError, match="not a duration"):
            parse_duration(wrong)


def test_run_options_and_stage_ends() -> None:
    options = parse_args(["--ladder", "500,250,500", "--duration", "90s", "--spawn-rate", "25"])
    assert options.steps == [250, 500]
    assert options.hold == 90
    spike = parse_args(["--shape", "spike", "--users", "100"])
    assert spike.peak_users(100) == 300
    assert stage_ends(spike, 100) == [
        ("ramp", 10.0),
        ("steady", 130.0),
        ("surge", 190.0),
        ("recovery", 310.0),
    ]
    assert stage_ends(options, 250) is None
    with pytest.raises(SystemExit):
        parse_args(["--database", "taskpipe"])  # would be dropped: refused


def test_unknown_routes_are_listed(tmp_path: Path) -> None:
    stats = tmp_path / "locust_stats.csv"
    stats.write_text(
        "Type,Name,Request Count\nGET,/api/v1/tasks,5\nGET,/api/v1/tasks/abc,1\n,Aggregated,6\n"
    )
    openapi = {"paths": {"/api/v1/tasks": {"get": {}, "post": {}}}}
    assert unknown_routes(stats, openapi) == ["GET /api/v1/tasks/abc"]


def test_ladder_rows_plot_and_capacity(tmp_path: Path) -> None:
    def step(users: int, p95: float, passed: bool) -> dict[str, object]:
        figures = {"rps": users / 3, "p50_ms": p95 / 3, "p95_ms": p95, "p99_ms": p95 * 1.5}
        return {
            "run": {"users": users, "uvicorn_workers": 2, "spawn_rate": 10, "steady_seconds": 60},
            "windows": {"steady": figures, "whole": {"failures": 0 if passed else 3}},
            "verdict": {"passed": passed},
            "machine": {"cpus": 2},
        }

    summaries = [step(1000, 150, True), step(250, 40, True), step(1500, 450, False)]
    rows = ladder_rows(summaries)
    assert [row["users"] for row in rows] == [250, 1000, 1500]
    assert largest_passing(rows) == 1000
    assert write_ladder(tmp_path, summaries) == 1000
    assert (tmp_path / "ladder.png").read_bytes().startswith(b"\x89PNG")
    written = json.loads((tmp_path / "ladder.json").read_text())
    assert written["largest_passing_users"] == 1000
    assert largest_passing([{"users": 250, "passed": False}]) is None


def test_cache_ratios_from_prometheus_text() -> None:
    text = (
        "# HELP taskpipe_cache_requests_total Cache lookups by kind and result\n"
        'taskpipe_cache_requests_total{kind="tasks",result="hit"} 30.0\n'
        'taskpipe_cache_requests_total{kind="tasks",result="miss"} 10.0\n'
        'taskpipe_cache_requests_total{kind="task",result="miss"} 5.0\n'
        'taskpipe_cache_created{kind="task",result="miss"} 1.7e+09\n'
    )
    ratios = cache_ratios(text)
    assert ratios["tasks"] == {"hit": 30.0, "miss": 10.0, "hit_ratio": 0.75}
    assert ratios["task"] == {"miss": 5.0, "hit_ratio": 0.0}


def test_cpu_sampler_measures_a_busy_process_tree(tmp_path: Path) -> None:
    import subprocess
    import sys
    import time

    from loadtests.measuring import CpuSampler

    spin = "import time\nt = time.time() + 3\nwhile time.time() < t: pass"
    busy = subprocess.Popen([sys.executable, "-c", spin])
    try:
        sampler = CpuSampler(tmp_path / "cpu.csv", roots={"busy": [busy.pid]}, singles={})
        sampler.start()
        time.sleep(2.5)
        sampler.stop()
    finally:
        busy.kill()
        busy.wait()
    rows = [line.split(",") for line in (tmp_path / "cpu.csv").read_text().splitlines()[1:]]
    groups = {group for _, group, _ in rows}
    assert {"busy", "postgres", "redis", "runner", "other", "machine"} <= groups
    busy_cores = [float(cores) for _, group, cores in rows if group == "busy"]
    assert len(busy_cores) >= 2
    # A spinning process uses a core when it gets one; on a busy two-core box (CI, other runs)
    # it may get a third of one, while an idle tree measures ~0.
    assert max(busy_cores) > 0.2, "a spinning process shows as busy"


def test_think_time_override(monkeypatch: pytest.MonkeyPatch) -> None:
    assert env.think_time((1.0, 5.0)) == (1.0, 5.0)
    monkeypatch.setenv(env.THINK, "2,8")
    assert env.think_time((1.0, 5.0)) == (2.0, 8.0)
    for wrong in ("8,2", "fast", "1,2,3"):
        monkeypatch.setenv(env.THINK, wrong)
        with pytest.raises(ValueError, match=env.THINK):
            env.think_time((1.0, 5.0))
