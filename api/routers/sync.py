"""The change feed: what changed in your tasks and categories since a cursor."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import Response

from api.boundary import resources_of
from api.deps import TasksAndCategoriesReader
from api.http_cache import documented_problems, json_response
from common.cursors import MAX_CURSOR_LENGTH
from common.sync.reader import DEFAULT_LIMIT, MAX_LIMIT, SyncReader
from common.sync.schemas import SyncPage

router = APIRouter(prefix="/api/v1/sync", tags=["sync"])


async def get_sync_reader(request: Request) -> SyncReader:
    resources = resources_of(request)
    return SyncReader(resources.reads, resources.cache, resources.cursors)


SyncReaderDep = Annotated[SyncReader, Depends(get_sync_reader)]


@router.get(
    "",
    response_model=SyncPage,
    summary="Changes since a cursor (the change feed)",
    description="Every change to your tasks and categories, one entry per entity (its latest "
    "change), in `seq` order. Without `since` it starts from the beginning (a first full sync: "
    "every live task and category, and recent tombstones); follow `next_cursor` while "
    "`has_more`, keep the last `next_cursor`, and send it as `since` to get what changed "
    "afterwards. Concurrent writes never make a follower miss a change. Deletions are "
    "tombstones kept at least `PURGE_RETENTION_DAYS`: a cursor older than a purged tombstone "
    "answers 410 (`resync-required`), and so does one from a server restored from a backup; "
    "drop your copy and start again without `since`. A cursor that is not this account's, or "
    "was altered, is a 400 (`invalid-cursor`). Derived numbers (`task_count`, "
    "`subtask_count`, `completed_subtask_count`) are as of the read; a change of a subtask or "
    "of a task's categories does not repeat its parent or categories. Needs the scopes "
    "`tasks:read` and `categories:read`.",
    responses=documented_problems(400, 401, 410),
)
async def read_changes(
    principal: TasksAndCategoriesReader,
    reader: SyncReaderDep,
    since: Annotated[
        str | None,
        Query(
            max_length=MAX_CURSOR_LENGTH,
            description="The `next_cursor` of your last sync; leave it out for a full sync",
        ),
    ] = None,
    limit: Annotated[
        int, Query(ge=1, le=MAX_LIMIT, description="Changes per answer")
    ] = DEFAULT_LIMIT,
) -> Response:
    return json_response(await reader.changes_json(principal.user_id, since, limit))
