from __future__ import annotations

import uuid
import zoneinfo
from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator, EmailStr, Field

from api.schemas.base import RequestModel, ResponseModel
from common.models.text import single_line


def _strip(value: object) -> object:
    return value.strip() if isinstance(value, str) else value


FullName = Annotated[
    str,
    BeforeValidator(_strip),
    Field(min_length=1, max_length=100, examples=["Ada Lovelace"]),
    AfterValidator(single_line),
]


def _known_time_zone(name: str) -> str:
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError) as exc:  # OSError: a folder
        raise ValueError("Unknown IANA time zone") from exc
    return name


TimeZoneName = Annotated[
    str,
    Field(min_length=1, max_length=64, examples=["Europe/Paris"]),
    AfterValidator(_known_time_zone),
]


class UserOut(ResponseModel):
    id: uuid.UUID
    email: EmailStr
    full_name: str
    is_active: bool = Field(description="True once the email address is verified")
    email_verified_at: datetime | None
    reminder_minutes_before: int = Field(description="Reminder lead time; 0 turns reminders off")
    timezone: str
    created_at: datetime


class UserUpdate(RequestModel):
    """Only the fields sent change; null leaves a field as it is."""

    full_name: FullName | None = None
    reminder_minutes_before: Annotated[int, Field(strict=True, ge=0, le=7 * 24 * 60)] | None = None
    timezone: TimeZoneName | None = None
