from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, EmailStr, Field

from api.schemas.base import RequestModel, ResponseModel
from api.schemas.users import FullName, UserOut
from common.security.passwords import password_problems


def _strong_password(password: str) -> str:
    problem = password_problems(password)
    if problem:
        raise ValueError(problem)
    return password


Email = Annotated[EmailStr, Field(max_length=320, examples=["ada@example.com"])]
NewPassword = Annotated[
    str, Field(max_length=1024, examples=["Correct-Horse-9"]), AfterValidator(_strong_password)
]
AnyPassword = Annotated[str, Field(min_length=1, max_length=1024, examples=["Correct-Horse-9"])]
OpaqueToken = Annotated[str, Field(min_length=1, max_length=2048)]


class RegisterIn(RequestModel):
    model_config = RequestModel.model_config | {"str_strip_whitespace": False}
    email: Email
    password: NewPassword
    full_name: FullName


class LoginIn(RequestModel):
    model_config = RequestModel.model_config | {"str_strip_whitespace": False}
    email: Email
    password: AnyPassword


class RefreshIn(RequestModel):
    refresh_token: OpaqueToken


class EmailIn(RequestModel):
    email: Email


class TokenIn(RequestModel):
    token: OpaqueToken


class ResetPasswordIn(RequestModel):
    model_config = RequestModel.model_config | {"str_strip_whitespace": False}
    token: OpaqueToken
    new_password: NewPassword


class TokenPairOut(ResponseModel):
    access_token: str
    refresh_token: str
    token_type: str = Field(default="bearer", examples=["bearer"])
    expires_in: int = Field(description="Access token lifetime in seconds", examples=[3600])


class RegisterOut(TokenPairOut):
    user: UserOut


class MessageOut(ResponseModel):
    detail: str = Field(examples=["If the address belongs to an account, a mail is on its way"])
