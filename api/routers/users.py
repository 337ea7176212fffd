"""The caller's own account: profile and activity."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Query, status
from starlette.responses import Response

from api.boundary import UnitOfWorkRoute
from api.deps import (
    AccountOwner,
    AccountReader,
    ClientDep,
    CredentialServiceDep,
    DeletionServiceDep,
    ResourcesDep,
    UnitOfWorkDep,
)
from api.problems import problem_responses
from api.schemas.accounts import (
    ActivityOut,
    ActivityPage,
    DeleteAccountIn,
    DeletionOut,
    EmailChangeIn,
    PasswordChangeIn,
)
from api.schemas.auth import MessageOut
from api.schemas.users import UserOut, UserUpdate
from common.auth.activity import ActivityLog
from common.users.service import UserService

router = APIRouter(prefix="/api/v1/users", tags=["users"], route_class=UnitOfWorkRoute)

RETYPED_PASSWORD = (
    "The password is checked like a sign-in: a wrong one answers 400 on its field and counts "
    "toward the lockout (423 once locked, with Retry-After), so a stolen session cannot guess "
    "it faster than anyone at the login form. Sessions only (a personal access token: 403)."
)


@router.post(
    "/me/password",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Change your password",
    description="The new password follows the registration rules. Every other session ends "
    "at once (this one stays); a notice goes to your address if it is verified. "
    + RETYPED_PASSWORD,
    responses=problem_responses(400, 401, 403, 413, 423, 429, 503),
)
async def change_password(
    body: PasswordChangeIn,
    principal: AccountOwner,
    credentials: CredentialServiceDep,
    client: ClientDep,
) -> Response:
    await credentials.change_password(
        principal.user_id,
        principal.session_id,
        current_password=body.current_password,
        new_password=body.new_password,
        client=client,
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/me/email",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Change your email address",
    description="Mails a confirmation link to the new address (valid 24 h, single-use) and, "
    "if your address is verified, a notice to it. The address changes only when the link "
    "is followed (`/api/v1/auth/confirm-email-change`), which also verifies it and ends "
    "every other session. 409 when the new address has an account (now or when the link is "
    "followed). Limited per account like the mail routes (3 in 15 minutes), and the link "
    "counts against the new address's daily link allowance (429 "
    "`address-mail-allowance-spent` when it is spent). " + RETYPED_PASSWORD,
    responses=problem_responses(400, 401, 403, 409, 413, 423, 429, 503),
)
async def change_email(
    body: EmailChangeIn,
    principal: AccountOwner,
    credentials: CredentialServiceDep,
    client: ClientDep,
) -> MessageOut:
    await credentials.request_email_change(
        principal.user_id,
        principal.session_id,
        new_email=str(body.new_email),
        password=body.password,
        client=client,
    )
    return MessageOut(detail="A confirmation link is on its way to the new address")


@router.get("/me", summary="Your profile", responses=problem_responses(401, 403, 429))
async def get_me(principal: AccountReader, uow: UnitOfWorkDep) -> UserOut:
    return UserOut.model_validate(await UserService(uow).get(principal.user_id))


@router.patch(
    "/me",
    summary="Change your name and reminder preferences",
    responses=problem_responses(400, 401, 403, 429),
)
async def update_me(body: UserUpdate, principal: AccountOwner, uow: UnitOfWorkDep) -> UserOut:
    user = await UserService(uow).update_profile(
        principal.user_id, **body.model_dump(exclude_unset=True, exclude_none=True)
    )
    return UserOut.model_validate(user)


@router.delete(
    "/me",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Delete your account",
    description="At once: every session and personal access token stops, every mailed link "
    "stops working, and signing in (or asking for a reset) answers as for an unknown "
    "address. After `TASKPIPE_ACCOUNT_DELETION_GRACE_DAYS` (7; 0: at once) a job erases "
    "every row of the account in batches; nothing remains but a counted metric. Until then "
    "the token mailed to your address (if it is verified) cancels it at "
    "`POST /api/v1/auth/restore-account`. The address stays taken until the erasure (a new "
    "registration with it answers 409). " + RETYPED_PASSWORD,
    responses=problem_responses(400, 401, 403, 413, 423, 429, 503),
)
async def delete_me(
    body: DeleteAccountIn,
    principal: AccountOwner,
    deletion: DeletionServiceDep,
    client: ClientDep,
) -> DeletionOut:
    erase_after = await deletion.request(principal.user_id, password=body.password, client=client)
    return DeletionOut(
        detail="Your account will be erased; the mailed link restores it until then",
        erase_after=erase_after,
    )


@router.get(
    "/me/activity",
    summary="Your account's security events",
    description="Sign-ins and failed ones, lockouts, password changes and resets, address "
    "changes, ended sessions, tokens created and revoked, exports, deletion requested and "
    "cancelled: newest first, with the client's network (IPv4 /24, IPv6 /64, never the "
    "address) and user agent. Kept `TASKPIPE_ACTIVITY_RETENTION_DAYS` (90). Page with "
    "`before`: the previous page's `next_before`.",
    responses=problem_responses(400, 401, 403, 429),
)
async def list_activity(
    principal: AccountReader,
    uow: UnitOfWorkDep,
    resources: ResourcesDep,
    limit: Annotated[int, Query(ge=1, le=100, description="Events per page")] = 50,
    before: Annotated[
        uuid.UUID | None, Query(description="Only events older than this one of yours")
    ] = None,
) -> ActivityPage:
    retention = timedelta(days=resources.settings.activity_retention_days)
    events = await ActivityLog(uow.session).page(
        principal.user_id, since=datetime.now(UTC) - retention, limit=limit + 1, before=before
    )
    shown = events[:limit]
    more = len(events) > limit
    return ActivityPage(
        items=[ActivityOut.model_validate(event) for event in shown],
        next_before=shown[-1].id if more else None,
    )
