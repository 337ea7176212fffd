"""Sessions: one per login, listed and ended by their owner."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Path, status
from starlette.responses import Response

from api.boundary import UnitOfWorkRoute
from api.deps import AccountOwner, ClientDep, ResourcesDep, UnitOfWorkDep
from api.problems import problem_responses
from api.schemas.accounts import SessionList, SessionOut
from common.auth.sessions import MAX_LISTED_SESSIONS, SessionService

router = APIRouter(
    prefix="/api/v1/users/me/sessions", tags=["sessions"], route_class=UnitOfWorkRoute
)

STOPS_AT_ONCE = (
    "Its access tokens stop working at once, as after a logout, and its refresh token is refused."
)


async def get_session_service(uow: UnitOfWorkDep, resources: ResourcesDep) -> SessionService:
    return SessionService(uow, resources.settings, resources.revocations)


SessionServiceDep = Annotated[SessionService, Depends(get_session_service)]
SessionId = Annotated[uuid.UUID, Path(description="The session's id (a malformed one is a 400)")]


@router.get(
    "",
    summary="List your sessions",
    description="Every session that can still be refreshed (one per login), most recently "
    f"used first, at most {MAX_LISTED_SESSIONS}: when and from which network (IPv4 /24, IPv6 "
    "/64) and user agent it signed in, when it was last refreshed, and `current: true` for "
    "the one this request comes from.",
    responses=problem_responses(401, 403, 429),
)
async def list_sessions(principal: AccountOwner, sessions: SessionServiceDep) -> SessionList:
    found = await sessions.of_user(principal.user_id, principal.session_id)
    return SessionList(items=[SessionOut.model_validate(view) for view in found])


@router.delete(
    "/{session_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="End one session",
    description=f"{STOPS_AT_ONCE} Ending the current one is a logout. An ended, unknown or "
    "another user's session answers 404.",
    responses=problem_responses(400, 401, 403, 404, 429),
)
async def end_session(
    session_id: SessionId, principal: AccountOwner, sessions: SessionServiceDep, client: ClientDep
) -> Response:
    await sessions.end(principal.user_id, session_id, client)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.delete(
    "",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="End every other session",
    description=f"Every session but the current one. {STOPS_AT_ONCE}",
    responses=problem_responses(401, 403, 429),
)
async def end_other_sessions(
    principal: AccountOwner, sessions: SessionServiceDep, client: ClientDep
) -> Response:
    await sessions.end_others(principal.user_id, principal.session_id, client)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
