"""Bodies of the account routes: password and address changes, sessions, personal access
tokens, exports, deletion and the activity log."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field

from api.schemas.auth import AnyPassword, Email, NewPassword
from api.schemas.base import RequestModel, ResponseModel
from common.accounts.scopes import Scope
from common.models import ActivityKind, ExportStatus
from common.models.text import single_line


class PasswordChangeIn(RequestModel):
    model_config = RequestModel.model_config | {"str_strip_whitespace": False}
    current_password: AnyPassword
    new_password: NewPassword


class EmailChangeIn(RequestModel):
    model_config = RequestModel.model_config | {"str_strip_whitespace": False}
    new_email: Email
    password: AnyPassword


class DeleteAccountIn(RequestModel):
    model_config = RequestModel.model_config | {"str_strip_whitespace": False}
    password: AnyPassword


class DeletionOut(ResponseModel):
    detail: str = Field(examples=["Your account will be erased; the mailed link restores it"])
    erase_after: datetime = Field(
        description="When the erasure may begin; until then the restore link works"
    )


class SessionOut(ResponseModel):
    id: uuid.UUID
    created_at: datetime = Field(description="The login")
    last_used_at: datetime | None = Field(
        description="The login or the latest refresh (access tokens are checked without the "
        "database, so their use does not show here)"
    )
    ip_network: str | None = Field(
        description="The client's network at login: IPv4 /24 or IPv6 /64, never the address",
        examples=["203.0.113.0/24"],
    )
    user_agent: str | None = Field(examples=["curl/8.5.0"])
    current: bool = Field(description="The session of the access token of this request")


class SessionList(ResponseModel):
    items: list[SessionOut]


def _strip(value: object) -> object:
    return value.strip() if isinstance(value, str) else value


def _distinct(scopes: list[Scope]) -> list[Scope]:
    if len(set(scopes)) != len(scopes):
        raise ValueError("Each scope may be listed once")
    return scopes


TokenName = Annotated[
    str,
    BeforeValidator(_strip),
    Field(min_length=1, max_length=100, examples=["backup script"]),
    AfterValidator(single_line),
]


class TokenCreate(RequestModel):
    name: TokenName
    scopes: Annotated[
        list[Scope],
        Field(min_length=1, max_length=len(Scope), examples=[["tasks:read"]]),
        AfterValidator(_distinct),
    ]
    expires_in_days: Annotated[int, Field(strict=True, ge=1, le=366)] = 30


class TokenOut(ResponseModel):
    id: uuid.UUID
    name: str
    scopes: list[str]
    created_at: datetime
    expires_at: datetime
    last_used_at: datetime | None = Field(description="Accurate to the minute")


class TokenCreated(TokenOut):
    token: str = Field(
        description="Shown this once: only its hash is kept. Send it as "
        "`Authorization: Bearer tp_pat_...`.",
        examples=["tp_pat_3kT9bQ2mX7vN1pL8rS4wY6zA0cD5eF2gH9jK1mN3"],
    )


class TokenList(ResponseModel):
    items: list[TokenOut]


class ExportOut(ResponseModel):
    id: uuid.UUID
    status: ExportStatus
    created_at: datetime
    finished_at: datetime | None = None
    expires_at: datetime | None = Field(
        default=None, description="The download stops working then, and the archive is deleted"
    )
    size_bytes: int | None = None
    failure: str | None = Field(default=None, description="Why a failed export failed")
    download_url: str | None = Field(
        default=None,
        description="When ready: the archive, for anyone holding this URL until `expires_at` "
        "(no Authorization header needed, so a browser can follow it)",
    )


class ActivityOut(ResponseModel):
    id: uuid.UUID
    kind: ActivityKind
    created_at: datetime
    ip_network: str | None = Field(
        description="IPv4 /24 or IPv6 /64 of the client, never the address"
    )
    user_agent: str | None
    detail: dict[str, Any] | None = Field(
        description="What the event concerns (a session or token id, the addresses of an "
        "address change, how many sessions ended, ...)"
    )


class ActivityPage(ResponseModel):
    items: list[ActivityOut]
    next_before: uuid.UUID | None = Field(
        description="Pass as `before` for the next (older) page; null on the last page"
    )
