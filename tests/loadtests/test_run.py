"""The runner's knobs that shape the figures: the platform's nice value, the API's command."""

from __future__ import annotations

from pathlib import Path

from api.server import build_parser
from loadtests.options import PLATFORM_NICE, parse_args
from loadtests.services import KEEP_ALIVE_SECONDS, Platform


def test_the_platform_yields_to_locust_by_default_and_can_be_told_not_to() -> None:
    assert PLATFORM_NICE > 0
    assert parse_args([]).platform_nice == PLATFORM_NICE
    assert parse_args(["--platform-nice", "0"]).platform_nice == 0


def test_a_niced_platform_process_runs_under_nice(tmp_path: Path) -> None:
    platform = Platform({}, tmp_path, port=0, workers=1, nice=7)
    process = platform._spawn("probe", ["sh", "-c", "exit 0"])
    assert process.popen.args[:3] == ["nice", "-n", "7"]
    assert process.popen.wait(10) == 0
    process.log.close()
    plain = Platform({}, tmp_path, port=0, workers=1)._spawn("plain", ["true"])
    assert plain.popen.args == ["true"]
    assert plain.popen.wait(10) == 0
    plain.log.close()


def test_the_api_runs_with_the_command_every_environment_uses(tmp_path: Path) -> None:
    argv = Platform({}, tmp_path, port=8123, workers=2).api_argv()
    assert argv[1:3] == ["-m", "api.server"]
    args = build_parser().parse_args(argv[3:])
    assert (args.host, args.port, args.workers) == ("127.0.0.1", 8123, 2)
    assert args.keep_alive == KEEP_ALIVE_SECONDS
