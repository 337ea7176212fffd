"""Authentication: register, verify email, login, refresh, logout, password reset."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Query, Request, status
from fastapi.security import SecurityScopes
from starlette.responses import Response

from api.boundary import UnitOfWorkRoute
from api.deps import (
    AuthServiceDep,
    BearerCredentials,
    ClientDep,
    CredentialServiceDep,
    DeletionServiceDep,
    ResourcesDep,
    auth_service,
    get_principal,
)
from api.http_cache import no_store
from api.problems import problem_responses
from api.resources import Resources
from api.schemas.auth import (
    EmailIn,
    LoginIn,
    MessageOut,
    OpaqueToken,
    RefreshIn,
    RegisterIn,
    RegisterOut,
    ResetPasswordIn,
    TokenIn,
    TokenPairOut,
)
from api.schemas.users import UserOut
from common.accounts.scopes import ACCOUNT_MANAGEMENT
from common.auth.service import AuthService, TokenPair
from common.errors import InvalidInput
from common.logging import get_logger

log = get_logger(__name__)
router = APIRouter(prefix="/api/v1/auth", tags=["auth"], route_class=UnitOfWorkRoute)

MAIL_ON_ITS_WAY = "If the address belongs to an account, a mail is on its way"
UNVERIFIED_ACCOUNTS = (
    "Until the address is verified the account works normally through the API, but no mail "
    "other than the verification link (and a password-reset link, which proves control of the "
    "address) is sent to it: no due-date reminders until then. Anyone can type anyone's "
    "address here; that rule keeps them from having us mail a stranger."
)
TAKEN_ADDRESS = (
    "A taken address answers 409, which tells the caller that the address has an account; "
    "the per-IP limit on registrations bounds how fast anyone can test addresses this way."
)


async def _after_response(
    resources: Resources,
    action: Callable[[AuthService, str], Awaitable[None]],
    email: str,
) -> None:
    """Work that must not show in the response time: whether the address has an account
    changes what happens (a token, a mail job), so it happens after the answer was sent."""
    try:
        async with resources.unit_of_work() as uow:
            await action(auth_service(uow, resources), email)
    except Exception:  # nobody is waiting for this answer any more: log it
        log.exception("mail_request_failed", action=action.__name__)


def _pair_out(pair: TokenPair) -> TokenPairOut:
    return TokenPairOut(
        access_token=pair.access_token,
        refresh_token=pair.refresh_token,
        token_type=pair.token_type,
        expires_in=pair.expires_in,
    )


@router.post(
    "/register",
    status_code=status.HTTP_201_CREATED,
    summary="Create an account",
    description="Returns tokens at once; the account stays `is_active: false` until the "
    f"emailed verification link is followed. {UNVERIFIED_ACCOUNTS} {TAKEN_ADDRESS}",
    responses=problem_responses(400, 409, 413, 429, 503),
)
async def register(
    body: RegisterIn, auth: AuthServiceDep, client: ClientDep, response: Response
) -> RegisterOut:
    result = await auth.register(
        email=str(body.email), password=body.password, full_name=body.full_name, client=client
    )
    no_store(response)
    pair = _pair_out(result.tokens)
    return RegisterOut(**pair.model_dump(), user=UserOut.model_validate(result.user))


@router.post(
    "/login",
    summary="Log in with email and password",
    description="Five failures in 15 minutes from one network (IPv4 /24, IPv6 /64) lock the "
    "account for that network for 15 minutes (423); twenty from anywhere lock it everywhere "
    "until the time passes or the password is reset. Each IP is rate limited (429). The answer "
    "for a wrong password and an unknown email is the same. 503 with Retry-After when the "
    "limits cannot be checked or too many sign-ins are being hashed: sign-in never goes "
    "unguarded.",
    responses=problem_responses(400, 401, 413, 423, 429, 503),
)
async def login(
    body: LoginIn, auth: AuthServiceDep, client: ClientDep, response: Response
) -> TokenPairOut:
    _, pair = await auth.login(email=str(body.email), password=body.password, client=client)
    no_store(response)
    return _pair_out(pair)


@router.post(
    "/refresh",
    summary="Trade a refresh token for a new pair",
    description="Rotation: the presented refresh token is retired. Presenting a retired token "
    "again revokes the whole session (every token descended from the same login). Limited per "
    "session (429), and a session ends 90 days (`TASKPIPE_SESSION_MAX_DAYS`) after its login "
    "however often it is refreshed (401: log in again).",
    responses=problem_responses(400, 401, 429, 503),
)
async def refresh(
    body: RefreshIn, auth: AuthServiceDep, client: ClientDep, response: Response
) -> TokenPairOut:
    pair = await auth.refresh(body.refresh_token, client)
    no_store(response)
    return _pair_out(pair)


@router.post(
    "/logout",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="End a session",
    description="Send the refresh token in the body, or no body and the access token as "
    "`Authorization: Bearer`: either ends that token's session, and its access tokens stop "
    "working at once. Without either, 401. A personal access token is no session (403): "
    "revoke it with `DELETE /api/v1/users/me/tokens/{id}`.",
    responses=problem_responses(400, 401, 403, 429),
)
async def logout(
    request: Request,
    auth: AuthServiceDep,
    credentials: BearerCredentials,
    client: ClientDep,
    body: RefreshIn | None = None,
) -> Response:
    if body is not None:
        await auth.logout(body.refresh_token, client)
    else:
        session = SecurityScopes([ACCOUNT_MANAGEMENT])
        principal = await get_principal(request, session, credentials)
        assert principal.session_id is not None  # sessions only, by the scope above
        await auth.logout_session(principal.user_id, principal.session_id, client)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/verify-email",
    summary="Verify an email address (the link in the mail)",
    responses=problem_responses(400, 429, 503),
)
async def verify_email_link(
    token: Annotated[OpaqueToken, Query(description="The token from the mailed link")],
    auth: AuthServiceDep,
    client: ClientDep,
) -> UserOut:
    try:
        user = await auth.verify_email(token, client=client)
    except InvalidInput as exc:  # the token came in the query string, not in a body
        raise InvalidInput(exc.detail, field="token", location="query") from None
    return UserOut.model_validate(user)


@router.post(
    "/verify-email",
    summary="Verify an email address with the mailed token",
    responses=problem_responses(400, 429, 503),
)
async def verify_email(body: TokenIn, auth: AuthServiceDep, client: ClientDep) -> UserOut:
    return UserOut.model_validate(await auth.verify_email(body.token, client=client))


@router.post(
    "/resend-verification",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Mail a new verification link",
    description="Always 202, whether or not the address has an unverified account.",
    responses=problem_responses(400, 429, 503),
)
async def resend_verification(
    body: EmailIn,
    auth: AuthServiceDep,
    client: ClientDep,
    resources: ResourcesDep,
    background: BackgroundTasks,
) -> MessageOut:
    await auth.limit_mail_requests(client)
    background.add_task(_after_response, resources, AuthService.resend_verification, body.email)
    return MessageOut(detail=MAIL_ON_ITS_WAY)


@router.post(
    "/forgot-password",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Mail a password-reset link",
    description="Always 202: the answer never reveals whether the address has an account.",
    responses=problem_responses(400, 429, 503),
)
async def forgot_password(
    body: EmailIn,
    auth: AuthServiceDep,
    client: ClientDep,
    resources: ResourcesDep,
    background: BackgroundTasks,
) -> MessageOut:
    await auth.limit_mail_requests(client)
    background.add_task(_after_response, resources, AuthService.forgot_password, body.email)
    return MessageOut(detail=MAIL_ON_ITS_WAY)


@router.post(
    "/reset-password",
    summary="Set a new password with the mailed token",
    description="The token is single-use; every session of the account is ended.",
    responses=problem_responses(400, 429, 503),
)
async def reset_password(
    body: ResetPasswordIn, auth: AuthServiceDep, client: ClientDep
) -> MessageOut:
    await auth.reset_password(token=body.token, new_password=body.new_password, client=client)
    return MessageOut(detail="Password changed; log in again")


CONFIRMS_ADDRESS = (
    "The link mailed to the new address by `POST /api/v1/users/me/email`: single-use, valid "
    "24 h. The account takes the address, verified, and every session but the one that asked "
    "ends. 409 when another account has taken the address meanwhile (the link stays usable). "
    "Rate limited per IP like the other mailed links."
)


@router.get(
    "/confirm-email-change",
    summary="Confirm a new email address (the link in the mail)",
    description=CONFIRMS_ADDRESS,
    responses=problem_responses(400, 409, 429, 503),
)
async def confirm_email_change_link(
    token: Annotated[OpaqueToken, Query(description="The token from the mailed link")],
    credentials: CredentialServiceDep,
    auth: AuthServiceDep,
    client: ClientDep,
) -> UserOut:
    await auth.limit_link_guesses(client)
    try:
        user = await credentials.confirm_email_change(token, client)
    except InvalidInput as exc:  # the token came in the query string, not in a body
        raise InvalidInput(exc.detail, field="token", location="query") from None
    return UserOut.model_validate(user)


@router.post(
    "/confirm-email-change",
    summary="Confirm a new email address with the mailed token",
    description=CONFIRMS_ADDRESS,
    responses=problem_responses(400, 409, 429, 503),
)
async def confirm_email_change(
    body: TokenIn, credentials: CredentialServiceDep, auth: AuthServiceDep, client: ClientDep
) -> UserOut:
    await auth.limit_link_guesses(client)
    return UserOut.model_validate(await credentials.confirm_email_change(body.token, client))


@router.post(
    "/restore-account",
    summary="Cancel the deletion of your account with the mailed token",
    description="The token from the deletion notice: single-use, valid until the erasure may "
    "begin (`erase_after`); after that, 400. The account comes back as it was; sessions and "
    "tokens ended by the deletion stay ended: log in again. Rate limited per IP like the "
    "other mailed links.",
    responses=problem_responses(400, 429, 503),
)
async def restore_account(
    body: TokenIn, deletion: DeletionServiceDep, auth: AuthServiceDep, client: ClientDep
) -> MessageOut:
    await auth.limit_link_guesses(client)
    await deletion.restore(body.token, client)
    return MessageOut(detail="Your account is restored; log in again")
