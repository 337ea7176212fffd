"""What text the models' string columns accept, checked wherever text comes in (request
bodies, search queries): control characters break logs and UIs (and NUL cannot be stored);
lone surrogates cannot be encoded as UTF-8."""

from __future__ import annotations

import re

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_CONTROL_EXCEPT_NEWLINES = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")


def single_line(value: str) -> str:
    """`value`, if it has no control character (ValueError otherwise)."""
    if _CONTROL.search(value):
        raise ValueError("Control characters are not allowed")
    return value


def multi_line(value: str) -> str:
    """`value`, if its only control characters are tabs and line breaks."""
    if _CONTROL_EXCEPT_NEWLINES.search(value):
        raise ValueError("Control characters other than tab and newlines are not allowed")
    return value


def strip_control(value: str) -> str:
    """`value` without its control characters (text we store but did not ask for, such as a
    user agent)."""
    return _CONTROL.sub("", value)
