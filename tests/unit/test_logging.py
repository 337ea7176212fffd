"""Log lines: readable at a terminal, JSON wherever a machine reads them, secrets redacted."""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Iterator

import pytest

from common.config import get_settings
from common.logging import configure_logging, get_logger


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    yield
    settings = get_settings()
    configure_logging(settings.log_level, json=settings.log_json)


def _log_to(stream: io.StringIO, monkeypatch: pytest.MonkeyPatch, json_lines: bool | None) -> str:
    monkeypatch.setattr(sys, "stdout", stream)
    configure_logging("INFO", json=json_lines)
    get_logger("taskpipe.test").info("task_created", task_id="t-1", password="hunter2")
    return stream.getvalue()


def test_a_terminal_gets_readable_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    output = _log_to(Terminal(), monkeypatch, None)
    assert "task_created" in output
    assert "task_id" in output
    assert "hunter2" not in output
    with pytest.raises(json.JSONDecodeError):
        json.loads(output.splitlines()[0])


def test_a_pipe_or_file_gets_json_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    line = json.loads(_log_to(io.StringIO(), monkeypatch, None).splitlines()[0])
    assert line["event"] == "task_created"
    assert line["task_id"] == "t-1"
    assert line["password"] == "[redacted]"


def test_the_setting_overrides_the_guess(monkeypatch: pytest.MonkeyPatch) -> None:
    assert json.loads(_log_to(Terminal(), monkeypatch, True).splitlines()[0])["task_id"] == "t-1"
    with pytest.raises(json.JSONDecodeError):
        json.loads(_log_to(io.StringIO(), monkeypatch, False).splitlines()[0])
