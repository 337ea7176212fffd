"""Base classes for request and response bodies."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator


class RequestModel(BaseModel):
    """Request bodies reject unknown fields and trim surrounding white space."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class ResponseModel(BaseModel):
    model_config = ConfigDict(from_attributes=True)


def not_null(schema: dict[str, Any]) -> None:
    """The JSON schema of an optional field that refuses an explicit null (a validator does):
    it may be left out, so Python's default is None, but the schema must not offer null."""
    schema.pop("default", None)
    members = [m for m in schema.pop("anyOf", []) if m != {"type": "null"}]
    if len(members) == 1:
        schema.update(members[0])
    elif members:
        schema["anyOf"] = members


def refuse_null(*fields: str) -> Any:
    """A before-validator for PATCH fields that may be left out but not cleared: their Python
    default is None, so only an explicit null in the body reaches it (pair with `not_null`)."""

    def reject_null(cls: type[BaseModel], value: object) -> object:
        if value is None:
            raise ValueError("May not be null")
        return value

    return field_validator(*fields, mode="before")(classmethod(reject_null))
