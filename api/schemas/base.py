"""Base classes for request and response bodies."""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict


class RequestModel(BaseModel):
    """Request bodies reject unknown fields and trim surrounding white space."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class ResponseModel(BaseModel):
    model_config = ConfigDict(from_attributes=True)


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_CONTROL_EXCEPT_NEWLINES = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")


def single_line(value: str) -> str:
    """No control characters (they break logs and UIs; NUL cannot be stored) nor lone
    surrogates (not encodable as UTF-8)."""
    if _CONTROL.search(value):
        raise ValueError("Control characters are not allowed")
    return value


def multi_line(value: str) -> str:
    if _CONTROL_EXCEPT_NEWLINES.search(value):
        raise ValueError("Control characters other than tab and newlines are not allowed")
    return value


def not_null(schema: dict[str, Any]) -> None:
    """The JSON schema of an optional field that refuses an explicit null (a validator does):
    it may be left out, so Python's default is None, but the schema must not offer null."""
    schema.pop("default", None)
    members = [m for m in schema.pop("anyOf", []) if m != {"type": "null"}]
    if len(members) == 1:
        schema.update(members[0])
    elif members:
        schema["anyOf"] = members
