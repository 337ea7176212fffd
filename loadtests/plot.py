"""The capacity ladder as a picture: steady-state p95 and requests/s against users.

    python -m loadtests.plot loadtests/reports/<timestamp>      (re-draw from its summaries)

`loadtests.run --ladder` calls `write_ladder` itself; the PNG shows where p95 crosses the target
and where throughput stops growing with users (the service is saturated from there on).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from loadtests.summary import P95_TARGET_MS


def ladder_rows(summaries: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per step: users and the steady-state figures, sorted by users."""
    rows = []
    for summary in summaries:
        steady = summary["windows"].get("steady") or {}
        whole = summary["windows"].get("whole") or {}
        rows.append(
            {
                "users": summary["run"]["users"],
                "rps": steady.get("rps"),
                "p50_ms": steady.get("p50_ms"),
                "p95_ms": steady.get("p95_ms"),
                "p99_ms": steady.get("p99_ms"),
                "failures": whole.get("failures", 0),
                "passed": summary["verdict"]["passed"],
                "cpu_cores": summary.get("cpu_cores", {}).get("steady", {}),
            }
        )
    return sorted(rows, key=lambda row: row["users"])


def largest_passing(rows: Sequence[dict[str, Any]]) -> int | None:
    """The largest user count of an unbroken run of passing steps from the bottom."""
    held = None
    for row in rows:
        if not row["passed"]:
            break
        held = row["users"]
    return held


def render(rows: Sequence[dict[str, Any]], target_ms: float, output: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    users = [row["users"] for row in rows]
    figure, latency = plt.subplots(figsize=(9, 5.5), dpi=120)
    for key, style, label in (
        ("p50_ms", ":", "p50"),
        ("p95_ms", "-", "p95"),
        ("p99_ms", "--", "p99"),
    ):
        latency.plot(
            users,
            [row[key] for row in rows],
            style,
            marker="o",
            color="tab:red",
            label=f"{label} (ms)",
            alpha=1.0 if key == "p95_ms" else 0.5,
        )
    latency.axhline(target_ms, color="grey", linewidth=1, linestyle="-.")
    latency.annotate(
        f"p95 target {target_ms:g} ms",
        (users[0], target_ms),
        textcoords="offset points",
        xytext=(0, 4),
        color="grey",
    )
    latency.set_xlabel("concurrent users")
    latency.set_ylabel("steady-state response time (ms)", color="tab:red")
    latency.set_yscale("log")
    throughput = latency.twinx()
    throughput.plot(
        users, [row["rps"] for row in rows], marker="s", color="tab:blue", label="requests/s"
    )
    throughput.set_ylabel("requests/s", color="tab:blue")
    throughput.set_ylim(bottom=0)
    for row in rows:
        if not row["passed"]:
            latency.annotate(
                "p95 over target" if row["failures"] == 0 else f"{row['failures']} failed",
                (row["users"], row["p95_ms"] or target_ms),
                textcoords="offset points",
                xytext=(0, -14),
                ha="center",
                color="tab:red",
                fontsize=8,
            )
    span = max(users) - min(users) or 1
    latency.set_xlim(min(users) - span * 0.06, max(users) + span * 0.06)
    lines = latency.get_legend_handles_labels()
    more = throughput.get_legend_handles_labels()
    latency.legend(lines[0] + more[0], lines[1] + more[1], loc="upper left", fontsize=8)
    latency.set_title(title, fontsize=10)
    latency.grid(True, alpha=0.3)
    figure.tight_layout()
    figure.savefig(output)
    plt.close(figure)


def write_ladder(
    report_root: Path, summaries: Sequence[dict[str, Any]], target_ms: float = P95_TARGET_MS
) -> int | None:
    """Write ladder.json and ladder.png; return the largest user count holding the target."""
    rows = ladder_rows(summaries)
    held = largest_passing(rows)
    machine = summaries[0].get("machine", {}) if summaries else {}
    run = summaries[0].get("run", {}) if summaries else {}
    (report_root / "ladder.json").write_text(
        json.dumps({"largest_passing_users": held, "steps": rows}, indent=2) + "\n"
    )
    title = (
        f"Taskpipe ladder: {machine.get('cpus', '?')} CPUs, "
        f"{run.get('uvicorn_workers', '?')} uvicorn workers, spawn {run.get('spawn_rate', 0):g}/s, "
        f"{run.get('steady_seconds', '?')} s steady; largest passing: {held or 'none'}"
    )
    render(rows, target_ms, report_root / "ladder.png", title)
    return held


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtests.plot", description=__doc__)
    parser.add_argument("report_dir", type=Path, help="a ladder's report directory")
    args = parser.parse_args(argv)
    summaries = [
        json.loads(path.read_text()) for path in sorted(args.report_dir.glob("*/summary.json"))
    ]
    if not summaries:
        print(f"no */summary.json under {args.report_dir}", file=sys.stderr)
        return 2
    held = write_ladder(args.report_dir, summaries)
    print(f"{args.report_dir / 'ladder.png'}; largest user count holding the target: {held}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
