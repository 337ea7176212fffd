"""Personal access tokens: for scripts and integrations, created and revoked by a session."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Path, status
from starlette.responses import Response

from api.boundary import UnitOfWorkRoute
from api.deps import AccountOwner, ClientDep, ResourcesDep, UnitOfWorkDep
from api.http_cache import no_store
from api.problems import problem_responses
from api.schemas.accounts import TokenCreate, TokenCreated, TokenList, TokenOut
from common.accounts.scopes import Scope
from common.accounts.token_service import PersonalTokenService

router = APIRouter(prefix="/api/v1/users/me/tokens", tags=["tokens"], route_class=UnitOfWorkRoute)

SESSIONS_ONLY = (
    "Needs a session (the access token of a login): a personal access token cannot manage "
    "tokens (403 `session-required`)."
)


async def get_token_service(uow: UnitOfWorkDep, resources: ResourcesDep) -> PersonalTokenService:
    return PersonalTokenService(uow, resources.settings, resources.revocations)


TokenServiceDep = Annotated[PersonalTokenService, Depends(get_token_service)]
TokenId = Annotated[uuid.UUID, Path(description="The token's id (a malformed one is a 400)")]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Create a personal access token",
    description="The answer carries the secret (`tp_pat_...`) this once; only its SHA-256 is "
    "kept. Send it as `Authorization: Bearer tp_pat_...`. Scopes: "
    + ", ".join(f"`{scope.value}`" for scope in Scope)
    + ". A route outside them answers 403 `insufficient-scope` naming the missing one; a "
    "token never reaches account management. Tokens count against the account's per-user "
    "rate limit; at most `TASKPIPE_PERSONAL_TOKENS_PER_USER` (50) per account (409). "
    + SESSIONS_ONLY,
    responses=problem_responses(400, 401, 403, 409, 429),
)
async def create_token(
    body: TokenCreate,
    principal: AccountOwner,
    tokens: TokenServiceDep,
    client: ClientDep,
    response: Response,
) -> TokenCreated:
    created = await tokens.create(
        principal.user_id,
        name=body.name,
        scopes=body.scopes,
        expires_in_days=body.expires_in_days,
        client=client,
    )
    no_store(response)
    shown = TokenOut.model_validate(created.token)
    return TokenCreated(**shown.model_dump(), token=created.secret)


@router.get(
    "",
    summary="List your personal access tokens",
    description="Never the secrets. Expired tokens stay listed until the purge. " + SESSIONS_ONLY,
    responses=problem_responses(401, 403, 429),
)
async def list_tokens(principal: AccountOwner, tokens: TokenServiceDep) -> TokenList:
    found = await tokens.of_user(principal.user_id)
    return TokenList(items=[TokenOut.model_validate(token) for token in found])


@router.delete(
    "/{token_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Revoke a personal access token",
    description="It stops working at once, in every API process. Another user's token "
    "answers 404, like a missing one. " + SESSIONS_ONLY,
    responses=problem_responses(400, 401, 403, 404, 429),
)
async def revoke_token(
    token_id: TokenId, principal: AccountOwner, tokens: TokenServiceDep, client: ClientDep
) -> Response:
    await tokens.revoke(principal.user_id, token_id, client)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
