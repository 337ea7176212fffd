"""Categories: a user's labels for tasks."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi import status as http
from starlette.responses import Response

from api.boundary import UnitOfWorkRoute, open_unit_of_work, resources_of
from api.deps import CategoriesReader, CategoriesWriter
from api.http_cache import documented_problems, json_response
from api.schemas.categories import CategoryCreate, CategoryList, CategoryOut, CategoryUpdate
from common.categories.schemas import render_category
from common.categories.service import CategoryService
from common.cursors import MAX_CURSOR_LENGTH

router = APIRouter(prefix="/api/v1/categories", tags=["categories"], route_class=UnitOfWorkRoute)

NOT_YOURS = "Another user's category answers 404, exactly like a missing one."


async def get_category_service(request: Request) -> CategoryService:
    resources = resources_of(request)
    return CategoryService(open_unit_of_work(request), resources.cache, resources.cursors)


CategoryServiceDep = Annotated[CategoryService, Depends(get_category_service)]
CategoryId = Annotated[uuid.UUID, Path(description="The category's id (a malformed one is a 400)")]


@router.post(
    "",
    status_code=http.HTTP_201_CREATED,
    response_model=CategoryOut,
    summary="Create a category",
    description="Names are trimmed and unique per user regardless of case (409 "
    "`category-name-taken`); other users may use the same names. Colors are `#RRGGBB`, "
    "returned in upper case.",
    responses=documented_problems(400, 401, 409),
)
async def create_category(
    body: CategoryCreate, principal: CategoriesWriter, categories: CategoryServiceDep
) -> Response:
    created = await categories.create(principal.user_id, body.name, body.color)
    return json_response(
        render_category(created),
        status_code=http.HTTP_201_CREATED,
        headers={"Location": f"{router.prefix}/{created.category.id}"},
    )


@router.get(
    "",
    response_model=CategoryList,
    summary="List your categories",
    description="By name ignoring case, each with its number of live (not deleted) tasks: all "
    "of them, or pages of `limit` with `next_cursor` (send it back as `cursor`; categories "
    "created or deleted meanwhile never make a page skip or repeat one). `total` counts them "
    "all. A cursor of another account, or an altered one, is a 400. Served from a per-user "
    "cache that every write invalidates. Needs the scope `categories:read`.",
    responses=documented_problems(400, 401),
)
async def list_categories(
    principal: CategoriesReader,
    categories: CategoryServiceDep,
    limit: Annotated[
        int | None, Query(ge=1, le=100, description="Page size (default: all of them)")
    ] = None,
    cursor: Annotated[
        str | None,
        Query(
            max_length=MAX_CURSOR_LENGTH,
            description="The `next_cursor` of the previous page (opaque)",
        ),
    ] = None,
) -> Response:
    return json_response(await categories.list_json(principal.user_id, limit=limit, cursor=cursor))


@router.get(
    "/{category_id}",
    response_model=CategoryOut,
    summary="Read a category",
    description=NOT_YOURS,
    responses=documented_problems(400, 401, 404),
)
async def get_category(
    category_id: CategoryId, principal: CategoriesReader, categories: CategoryServiceDep
) -> Response:
    return json_response(render_category(await categories.get(principal.user_id, category_id)))


@router.patch(
    "/{category_id}",
    response_model=CategoryOut,
    summary="Rename or recolor a category",
    description="Same rules as creation; `color: null` removes the color. " + NOT_YOURS,
    responses=documented_problems(400, 401, 404, 409),
)
async def update_category(
    category_id: CategoryId,
    body: CategoryUpdate,
    principal: CategoriesWriter,
    categories: CategoryServiceDep,
) -> Response:
    updated = await categories.update(principal.user_id, category_id, body.changes())
    return json_response(render_category(updated))


@router.delete(
    "/{category_id}",
    status_code=http.HTTP_204_NO_CONTENT,
    summary="Delete a category",
    description="Its tasks stay; they just lose this category. " + NOT_YOURS,
    responses=documented_problems(400, 401, 404),
)
async def delete_category(
    category_id: CategoryId, principal: CategoriesWriter, categories: CategoryServiceDep
) -> Response:
    await categories.delete(principal.user_id, category_id)
    return Response(status_code=http.HTTP_204_NO_CONTENT)
