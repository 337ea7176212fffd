"""The caller's own account."""

from __future__ import annotations

from fastapi import APIRouter

from api.boundary import UnitOfWorkRoute
from api.deps import CurrentPrincipal, UnitOfWorkDep
from api.problems import problem_responses
from api.schemas.users import UserOut, UserUpdate
from common.users.service import UserService

router = APIRouter(prefix="/api/v1/users", tags=["users"], route_class=UnitOfWorkRoute)


@router.get("/me", summary="Your profile", responses=problem_responses(401))
async def get_me(principal: CurrentPrincipal, uow: UnitOfWorkDep) -> UserOut:
    return UserOut.model_validate(await UserService(uow).get(principal.user_id))


@router.patch(
    "/me",
    summary="Change your name and reminder preferences",
    responses=problem_responses(400, 401),
)
async def update_me(body: UserUpdate, principal: CurrentPrincipal, uow: UnitOfWorkDep) -> UserOut:
    user = await UserService(uow).update_profile(
        principal.user_id, **body.model_dump(exclude_unset=True, exclude_none=True)
    )
    return UserOut.model_validate(user)
