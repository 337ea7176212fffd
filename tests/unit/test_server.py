"""`python -m api.server`: the one command line every environment runs the API with."""

from __future__ import annotations

import pytest

from api.server import build_parser


def test_defaults_serve_one_process_on_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WEB_CONCURRENCY", raising=False)
    args = build_parser().parse_args([])
    assert (args.host, args.port, args.workers) == ("127.0.0.1", 8000, 1)


def test_worker_count_comes_from_web_concurrency(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEB_CONCURRENCY", "3")
    assert build_parser().parse_args([]).workers == 3
    assert build_parser().parse_args(["--workers", "2"]).workers == 2
