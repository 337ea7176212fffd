"""What a run prints at the end of each step, and the `latest` link to its report."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any


def print_summary(summary: dict[str, Any], directory: Path) -> None:
    windows = summary["windows"]
    lines = [f"report: {directory}", "window     requests  fail   rps     p50     p95     p99"]
    for name, figures in windows.items():
        lines.append(
            f"{name:<10} {figures['requests']:>8} {figures['failures']:>5} {figures['rps']:>6} "
            f"{_fmt(figures['p50_ms'])} {_fmt(figures['p95_ms'])} {_fmt(figures['p99_ms'])}"
        )
    steady = windows.get("steady")
    if steady:
        lines.append("steady state by route (p95 ms, slowest first):")
        routes = sorted(steady["routes"].items(), key=lambda item: -(item[1]["p95_ms"] or 0))
        for route, figures in routes:
            lines.append(
                f"  {route:<52} {figures['requests']:>7} {figures['failures']:>4} "
                f"p50 {_fmt(figures['p50_ms'])} p95 {_fmt(figures['p95_ms'])}"
            )
    cpu = summary["cpu_cores"].get("steady", {})
    if cpu:
        lines.append("steady-state CPU (cores): " + ", ".join(f"{k} {v}" for k, v in cpu.items()))
    for failure in summary["failures"][:10]:
        lines.append(
            f"failure: {failure['occurrences']}x {failure['method']} {failure['name']}: "
            f"{failure['error']}"
        )
    verdict = summary["verdict"]
    lines.append("PASS" if verdict["passed"] else "FAIL: " + "; ".join(verdict["reasons"] or ["?"]))
    print("\n".join(lines), flush=True)


def _fmt(value: float | None) -> str:
    return f"{value:>7.1f}" if value is not None else "      -"


def point_latest(report_root: Path) -> None:
    latest = report_root.parent / "latest"
    with contextlib.suppress(OSError):
        if latest.is_symlink() or latest.exists():
            latest.unlink()
        latest.symlink_to(report_root.name)
