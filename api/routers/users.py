"""The caller's own account: profile and activity."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Query

from api.boundary import UnitOfWorkRoute
from api.deps import AccountOwner, AccountReader, ResourcesDep, UnitOfWorkDep
from api.problems import problem_responses
from api.schemas.accounts import ActivityOut, ActivityPage
from api.schemas.users import UserOut, UserUpdate
from common.auth.activity import ActivityLog
from common.users.service import UserService

router = APIRouter(prefix="/api/v1/users", tags=["users"], route_class=UnitOfWorkRoute)


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
