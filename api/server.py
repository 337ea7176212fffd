"""Serve the API: `python -m api.server [--host H] [--port P] [--workers N] [--log-level L]`.

The one place that says how the API process runs (event loop, HTTP parser, proxy trust, graceful
shutdown), so `make run`, the image, compose, Kubernetes, the tests and the load tests all run the
same server. Proxy headers are trusted only from `FORWARDED_ALLOW_IPS` (uvicorn reads it itself;
default 127.0.0.1). Worker processes: `--workers`, else `WEB_CONCURRENCY`, else 1; more than one
also needs `PROMETHEUS_MULTIPROC_DIR` so that /metrics covers every process.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence

import uvicorn

GRACEFUL_SHUTDOWN_SECONDS = 25
"""In-flight requests get this long after SIGTERM (k8s: below terminationGracePeriodSeconds)."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m api.server", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--workers", type=int, default=int(os.environ.get("WEB_CONCURRENCY") or 1))
    parser.add_argument(
        "--keep-alive", type=int, default=5, help="seconds an idle connection stays open"
    )
    parser.add_argument("--log-level", default="info", help="uvicorn's own log level")
    return parser


def main(argv: Sequence[str] | None = None) -> None:  # pragma: no cover - runs until stopped
    args = build_parser().parse_args(argv)
    uvicorn.run(
        "api.main:app",
        host=args.host,
        port=args.port,
        workers=args.workers,
        loop="uvloop",
        http="httptools",
        proxy_headers=True,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
        timeout_keep_alive=args.keep_alive,
        log_level=args.log_level,
        access_log=False,  # the app logs one line per request itself (api/middleware.py)
    )


if __name__ == "__main__":  # pragma: no cover
    main()
