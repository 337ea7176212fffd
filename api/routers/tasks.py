"""Tasks: create, read, list (offset or cursor pages), update (optimistic locking), delete,
their categories, subtasks, batches of up to 100, and the trash."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path, Query, Request
from fastapi import status as http
from starlette.convertors import StringConvertor, register_url_convertor
from starlette.responses import Response

from api.boundary import UnitOfWorkRoute, open_unit_of_work, resources_of
from api.deps import ResourcesDep, TasksReader, TasksWriter
from api.http_cache import (
    ETAG_HEADER,
    NOT_MODIFIED,
    conditional_json_response,
    documented_problems,
    etag_for,
    json_response,
    match,
)
from api.resources import Resources
from api.schemas.tasks import (
    QueryDateTime,
    TaskBatchCreate,
    TaskBatchDelete,
    TaskBatchOut,
    TaskBatchUpdate,
    TaskCreate,
    TaskOut,
    TaskPage,
    TaskUpdate,
    TaskWithNext,
    TrashPage,
)
from common.cursors import MAX_CURSOR_LENGTH
from common.errors import RateLimited
from common.tasks.batch import TaskBatches, TaskEdit
from common.tasks.errors import PreconditionRequired
from common.tasks.queries import MAX_LIMIT, SORT_FIELDS, parse_list_query
from common.tasks.reader import TaskReader
from common.tasks.service import NewTask, Precondition, TaskService
from common.tasks.trash import TrashReader
from common.tasks.views import TaskRow, render_items, render_task, render_with_next

router = APIRouter(prefix="/api/v1/tasks", tags=["tasks"], route_class=UnitOfWorkRoute)

FIXED_PATHS = ("batch", "trash")


class _TaskIdSegment(StringConvertor):
    """Any path segment but the fixed paths beside a task's (`/tasks/trash`, `/tasks/batch`):
    `GET /tasks/batch` is then a 405 of the batch resource, not a 400 for a malformed task id.
    Any other malformed id still reaches the route, and its 400."""

    regex = "(?!(?:" + "|".join(FIXED_PATHS) + ")$)[^/]+"


register_url_convertor("task_id", _TaskIdSegment())

NOT_YOURS = "Another user's task answers 404, exactly like a missing or deleted one."


async def get_task_service(request: Request) -> TaskService:
    return TaskService(open_unit_of_work(request))


TaskServiceDep = Annotated[TaskService, Depends(get_task_service)]


async def get_task_reader(request: Request) -> TaskReader:
    resources = resources_of(request)
    return TaskReader(resources.reads, resources.cache, resources.cursors)


TaskReaderDep = Annotated[TaskReader, Depends(get_task_reader)]
TaskId = Annotated[uuid.UUID, Path(description="The task's id (a malformed one is a 400)")]
CategoryId = Annotated[uuid.UUID, Path(description="The category's id (a malformed one is a 400)")]
IfMatch = Annotated[
    str | None,
    Header(
        description='The ETag you read, e.g. `"3f2b…"`; a stale one gives 412. '
        "`*` updates whatever the current version is (last writer wins).",
    ),
]
CursorParameter = Annotated[
    str | None,
    Query(
        max_length=MAX_CURSOR_LENGTH,
        description="The `next_cursor` of the previous page (opaque)",
    ),
]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        description="Any unique string of up to 255 visible ASCII characters (a UUID)",
    ),
]
IfNoneMatch = Annotated[
    str | None, Header(description="An ETag you hold; 304 without a body when it is current")
]


RespondOnce = Callable[[Any, Callable[[], Awaitable[Response]]], Awaitable[Response]]


async def respond_once(
    request: Request, principal: TasksWriter, idempotency_key: IdempotencyKey = None
) -> RespondOnce:
    """The request's answer, once per `Idempotency-Key` (`api.idempotency`): a handler gives
    what identifies the request and the work that answers it."""
    return functools.partial(
        resources_of(request).idempotency.respond,
        open_unit_of_work(request),
        principal.user_id,
        idempotency_key,
    )


OnceDep = Annotated[RespondOnce, Depends(respond_once)]


def _kept_for(resources: Resources) -> timedelta:
    return timedelta(days=resources.settings.purge_retention_days)


def _location(task_id: uuid.UUID) -> str:
    return f"{router.prefix}/{task_id}"


def _task_response(task: TaskRow, body: bytes) -> Response:
    """`body` about `task`, with the ETag a read of the task alone would have."""
    return json_response(body, headers={"ETag": etag_for(render_task(task))})


def _if_match(header: str | None) -> Precondition | None:
    """The If-Match check; None when there is nothing to check (`*`: any current version)."""
    if header is None or header.strip() == "*":
        return None
    return lambda task: match(header, etag_for(render_task(task)))


@router.post(
    "",
    status_code=http.HTTP_201_CREATED,
    response_model=TaskOut,
    summary="Create a task",
    description="New tasks are `pending` and `medium` unless said otherwise; `parent_id` "
    "makes it a subtask (400 naming it when the parent is not one of your live tasks or the "
    "task would sit more than three levels deep). With an "
    "`Idempotency-Key` header a retried request (same key, same body, within 24 h) returns the "
    "first response with `Idempotent-Replayed: true` and creates nothing; the same key with a "
    "different body is a 422, and a duplicate sent while the first is still running a 409.",
    responses={
        201: {"headers": {**ETAG_HEADER, "Location": {"schema": {"type": "string"}}}},
        **documented_problems(400, 401, 409, 413, 422),
    },
)
async def create_task(
    body: TaskCreate, principal: TasksWriter, tasks: TaskServiceDep, once: OnceDep
) -> Response:
    async def create() -> Response:
        task = await tasks.create(principal.user_id, NewTask(**body.model_dump()))
        return json_response(
            render_task(task),
            status_code=http.HTTP_201_CREATED,
            headers={"Location": _location(task.id)},
        )

    return await once(
        ["POST /api/v1/tasks", body.model_dump(mode="json", exclude_unset=True)], create
    )


@router.get(
    "",
    response_model=TaskPage,
    summary="List your tasks",
    description="Filters combine with AND; `status`, `priority` and `category_id` take several "
    "values (repeated or comma-separated) and match any of them. Two ways to page: `page` "
    "(an offset; a page past the end is an empty `items` list), or `cursor`: every answer "
    "carries `next_cursor`, the position of its last row, and `cursor=<it>` (same filters "
    "and sort) gives the rows after it: no row is skipped or repeated while tasks are created "
    "or deleted meanwhile (an edit can move a task in a sort by `updated_at`). Cursor pages "
    "answer `total`, `page` and `pages` as null. `page` and `cursor` together, a cursor of "
    "another list or another account, or an altered one are 400s. Pages are served from a "
    "per-user cache that every write invalidates; send `If-None-Match` to get a 304 when "
    "nothing changed. Needs the scope `tasks:read`.",
    responses={200: {"headers": ETAG_HEADER}, **NOT_MODIFIED, **documented_problems(400, 401)},
)
async def list_tasks(
    principal: TasksReader,
    reader: TaskReaderDep,
    page: Annotated[
        int | None, Query(ge=1, le=1_000_000, description="1-based page number (default 1)")
    ] = None,
    cursor: CursorParameter = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Page size")] = 20,
    status: Annotated[
        list[str] | None,
        Query(
            description="`pending`, `in_progress`, `completed`, `cancelled`",
            examples=["pending,in_progress"],
        ),
    ] = None,
    priority: Annotated[
        list[str] | None, Query(description="`low`, `medium`, `high`", examples=["high"])
    ] = None,
    category_id: Annotated[
        list[str] | None, Query(description="Tasks in any of these categories (UUIDs)")
    ] = None,
    due_from: Annotated[
        QueryDateTime | None,
        Query(
            description="Due at or after (ISO 8601 with a time zone)",
            examples=["2026-12-01T00:00:00Z"],
        ),
    ] = None,
    due_to: Annotated[
        QueryDateTime | None,
        Query(
            description="Due at or before (ISO 8601 with a time zone)",
            examples=["2026-12-31T23:59:59Z"],
        ),
    ] = None,
    q: Annotated[
        str | None,
        Query(
            max_length=200,
            description="Case-insensitive text in the title or description (at least 3 characters)",
        ),
    ] = None,
    overdue: Annotated[
        bool | None,
        Query(description="true: due in the past and still pending or in progress; false: not"),
    ] = None,
    parent_id: Annotated[
        uuid.UUID | None, Query(description="Only the direct subtasks of this task")
    ] = None,
    top_level: Annotated[
        bool | None,
        Query(description="true: only tasks without a parent; false: only subtasks"),
    ] = None,
    sort: Annotated[
        list[str] | None,
        Query(
            description=f"Comma list of {', '.join(f'`{f}`' for f in SORT_FIELDS)}, each "
            "optionally prefixed with `-` for descending (default `-created_at`). Ties are "
            "broken by `created_at` (after `priority` or `status`) and then `id`, in the "
            "direction of the last key. Tasks without a due date sort after all others in "
            "ascending order and before them in descending order; `status` sorts alphabetically.",
            examples=["-priority,due_date"],
        ),
    ] = None,
    if_none_match: IfNoneMatch = None,
) -> Response:
    query = parse_list_query(
        page=page,
        limit=limit,
        status=status,
        priority=priority,
        category_id=category_id,
        due_from=due_from,
        due_to=due_to,
        q=q,
        overdue=overdue,
        sort=sort,
        parent_id=parent_id,
        top_level=top_level,
        cursor=cursor,
    )
    body = await reader.list_json(principal.user_id, query)
    return conditional_json_response(body, if_none_match)


BATCH_NOTE = (
    "All or nothing, in one transaction: when any item fails, nothing is written and the "
    'answer\'s `errors` name each failed item by its index (`loc`: `["body", "items", '
    '57, "title"]`). Honours `Idempotency-Key` as `POST /tasks` does. One change-feed '
    "entry per task, one cache invalidation per batch. Bodies are limited to 256 KiB (413) "
    "and batches to `TASKPIPE_BATCH_RATE_LIMIT` a minute per user (429), besides the "
    "per-user limit. Needs the scope `tasks:write`."
)


async def within_batch_limit(principal: TasksWriter, resources: ResourcesDep) -> None:
    """A batch writes up to 100 tasks: its own, tighter limit per user."""
    settings = resources.settings
    result = await resources.limiter.hit(
        "batch",
        str(principal.user_id),
        limit=settings.batch_rate_limit,
        window_seconds=settings.batch_rate_window_seconds,
    )
    if not result.allowed:
        raise RateLimited("Too many batches for this account; slow down", headers=result.headers)


async def get_batches(request: Request) -> TaskBatches:
    return TaskBatches(open_unit_of_work(request))


TaskBatchesDep = Annotated[TaskBatches, Depends(get_batches)]


@router.post(
    "/batch",
    status_code=http.HTTP_201_CREATED,
    response_model=TaskBatchOut,
    summary="Create up to 100 tasks at once",
    description="Each item as `POST /tasks` takes it; the answer lists the new tasks in the "
    "order of the items. " + BATCH_NOTE,
    responses=documented_problems(400, 401, 409, 413, 422, 429),
    dependencies=[Depends(within_batch_limit)],
)
async def create_tasks(
    body: TaskBatchCreate, principal: TasksWriter, batches: TaskBatchesDep, once: OnceDep
) -> Response:
    async def create() -> Response:
        items = [NewTask(**item.model_dump()) for item in body.items]
        created = await batches.create(principal.user_id, items)
        return json_response(render_items(created), status_code=http.HTTP_201_CREATED)

    request = ["POST /api/v1/tasks/batch", body.model_dump(mode="json", exclude_unset=True)]
    return await once(request, create)


@router.patch(
    "/batch",
    response_model=TaskBatchOut,
    summary="Change up to 100 tasks at once",
    description="Each item is `{id, version, ...changes}` and applies as `PATCH /tasks/{id}` "
    "with that `version` would, in the order of the items; a task may appear once. Stale "
    "versions only: 409 (each with `current_version`); otherwise 400 (invalid values, "
    "unknown or other users' tasks, repeated ids). " + BATCH_NOTE,
    responses=documented_problems(400, 401, 409, 413, 422, 429),
    dependencies=[Depends(within_batch_limit)],
)
async def update_tasks(
    body: TaskBatchUpdate, principal: TasksWriter, batches: TaskBatchesDep, once: OnceDep
) -> Response:
    async def update() -> Response:
        edits = [TaskEdit(item.id, item.version, item.changes()) for item in body.items]
        return json_response(render_items(await batches.update(principal.user_id, edits)))

    request = ["PATCH /api/v1/tasks/batch", body.model_dump(mode="json", exclude_unset=True)]
    return await once(request, update)


@router.post(
    "/batch/delete",
    status_code=http.HTTP_204_NO_CONTENT,
    summary="Delete up to 100 tasks at once",
    description="Each task with its subtasks, into the trash, as `DELETE /tasks/{id}` does. "
    "Unknown, already deleted or other users' ids, and repeated ones, fail the batch (400). "
    + BATCH_NOTE,
    responses=documented_problems(400, 401, 409, 413, 422, 429),
    dependencies=[Depends(within_batch_limit)],
)
async def delete_tasks(
    body: TaskBatchDelete, principal: TasksWriter, batches: TaskBatchesDep, once: OnceDep
) -> Response:
    async def delete() -> Response:
        await batches.delete(principal.user_id, body.ids)
        return Response(status_code=http.HTTP_204_NO_CONTENT)

    return await once(["POST /api/v1/tasks/batch/delete", body.model_dump(mode="json")], delete)


@router.get(
    "/trash",
    response_model=TrashPage,
    summary="List your deleted tasks (the trash)",
    description="Tasks deleted less than `PURGE_RETENTION_DAYS` ago (30 by default), newest "
    "deletion first, each with `deleted_at`; subtasks deleted with their parent are listed "
    "too (`parent_id` says whose). Page with `limit` and `next_cursor`. Restore one with "
    "`POST /tasks/{id}/restore`. Needs the scope `tasks:read`.",
    responses=documented_problems(400, 401),
)
async def list_trash(
    principal: TasksReader,
    resources: ResourcesDep,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Page size")] = 20,
    cursor: CursorParameter = None,
) -> Response:
    trash = TrashReader(resources.reads, resources.cursors, kept_for=_kept_for(resources))
    return json_response(await trash.page_json(principal.user_id, limit=limit, cursor=cursor))


@router.get(
    "/{task_id:task_id}",
    response_model=TaskOut,
    summary="Read a task",
    description=f"{NOT_YOURS} Send `If-None-Match` to get a 304 when it did not change.",
    responses={200: {"headers": ETAG_HEADER}, **NOT_MODIFIED, **documented_problems(400, 401, 404)},
)
async def get_task(
    task_id: TaskId,
    principal: TasksReader,
    reader: TaskReaderDep,
    if_none_match: IfNoneMatch = None,
) -> Response:
    return conditional_json_response(
        await reader.get_json(principal.user_id, task_id), if_none_match
    )


@router.patch(
    "/{task_id:task_id}",
    response_model=TaskWithNext,
    summary="Change a task",
    description="Optimistic locking: send the `version` you read (stale: 409 with "
    "`current_version`) or the ETag you read in `If-Match` (stale: 412). With neither the "
    "answer is 428. Every change bumps `version` and the ETag; sending only unchanged values "
    "changes nothing. Setting the status to `completed` sets `completed_at`, leaving it "
    "clears it; changing `due_date` re-arms its reminder. Completing a recurring task creates "
    "its next occurrence in the same transaction, once however often it is completed; answers "
    "about a recurring task show it in `next_occurrence`, with the task's own ETag. An "
    "`Idempotency-Key` replays the first answer to a retried request. " + NOT_YOURS,
    responses={
        200: {"headers": ETAG_HEADER},
        **documented_problems(400, 401, 404, 409, 412, 422, 428),
    },
)
async def update_task(
    task_id: TaskId,
    body: TaskUpdate,
    principal: TasksWriter,
    tasks: TaskServiceDep,
    once: OnceDep,
    if_match: IfMatch = None,
) -> Response:
    if body.version is None and if_match is None:
        raise PreconditionRequired(
            "Send the version you read in the body (`version`) or its ETag in If-Match"
        )

    async def update() -> Response:
        task = await tasks.update(
            principal.user_id,
            task_id,
            body.changes(),
            expected_version=body.version,
            precondition=_if_match(if_match),
        )
        if task.recurrence is None:
            return json_response(render_task(task))
        next_occurrence = await tasks.next_occurrence(principal.user_id, task)
        return _task_response(task, render_with_next(task, next_occurrence))

    request = [
        f"PATCH {_location(task_id)}",
        body.model_dump(mode="json", exclude_unset=True),
        if_match,
    ]
    return await once(request, update)


@router.post(
    "/{task_id}/skip",
    response_model=TaskOut,
    summary="Skip an occurrence of a recurring task",
    description="Moves the task's due date to its next occurrence without completing it (and "
    "re-arms its reminder); after an overdue occurrence the next one may still be overdue. "
    "409 when the task does not recur (`task-not-recurring`), is not open "
    "(`occurrence-not-open`) or its series has no next occurrence (`series-ended`). An "
    "optional If-Match makes the skip conditional (stale: 412); with an `Idempotency-Key` a "
    "retried skip moves the task once. " + NOT_YOURS,
    responses={200: {"headers": ETAG_HEADER}, **documented_problems(400, 401, 404, 409, 412, 422)},
)
async def skip_occurrence(
    task_id: TaskId,
    principal: TasksWriter,
    tasks: TaskServiceDep,
    once: OnceDep,
    if_match: IfMatch = None,
) -> Response:
    async def skip() -> Response:
        task = await tasks.skip(principal.user_id, task_id, precondition=_if_match(if_match))
        return json_response(render_task(task))

    return await once([f"POST {_location(task_id)}/skip", if_match], skip)


@router.delete(
    "/{task_id:task_id}",
    status_code=http.HTTP_204_NO_CONTENT,
    summary="Delete a task",
    description="The task disappears at once from every read and write (404 from then on) and "
    "is purged later. An optional If-Match makes the delete conditional (stale: 412). " + NOT_YOURS,
    responses=documented_problems(400, 401, 404, 412),
)
async def delete_task(
    task_id: TaskId, principal: TasksWriter, tasks: TaskServiceDep, if_match: IfMatch = None
) -> Response:
    await tasks.delete(principal.user_id, task_id, precondition=_if_match(if_match))
    return Response(status_code=http.HTTP_204_NO_CONTENT)


@router.post(
    "/{task_id}/categories/{category_id}",
    response_model=TaskOut,
    summary="Put a task in a category",
    description="Answers the task with its categories. Bumps the task's `version`. A category "
    "the task already has is a 400 (`category-already-assigned`). Another user's task or "
    "category answers 404, exactly like a missing one.",
    responses={200: {"headers": ETAG_HEADER}, **documented_problems(400, 401, 404)},
)
async def assign_category(
    task_id: TaskId, category_id: CategoryId, principal: TasksWriter, tasks: TaskServiceDep
) -> Response:
    task = await tasks.assign_category(principal.user_id, task_id, category_id)
    return json_response(render_task(task))


@router.delete(
    "/{task_id}/categories/{category_id}",
    status_code=http.HTTP_204_NO_CONTENT,
    summary="Take a task out of a category",
    description="Bumps the task's `version`. 404 when the task does not have the category, "
    "and for another user's task or category.",
    responses=documented_problems(400, 401, 404),
)
async def remove_category(
    task_id: TaskId, category_id: CategoryId, principal: TasksWriter, tasks: TaskServiceDep
) -> Response:
    await tasks.remove_category(principal.user_id, task_id, category_id)
    return Response(status_code=http.HTTP_204_NO_CONTENT)


@router.get(
    "/{task_id}/subtasks",
    response_model=TaskPage,
    summary="List a task's subtasks",
    description="Its live direct subtasks (`GET /tasks?parent_id=` without the 404), oldest "
    "first unless `sort` says otherwise, paged like the task list (`limit`, `next_cursor`). "
    + NOT_YOURS
    + " Needs the scope `tasks:read`.",
    responses={200: {"headers": ETAG_HEADER}, **NOT_MODIFIED, **documented_problems(400, 401, 404)},
)
async def list_subtasks(
    task_id: TaskId,
    principal: TasksReader,
    reader: TaskReaderDep,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Page size")] = 20,
    cursor: CursorParameter = None,
    sort: Annotated[
        list[str] | None,
        Query(description="As in the task list (default `created_at`)", examples=["title"]),
    ] = None,
    if_none_match: IfNoneMatch = None,
) -> Response:
    query = parse_list_query(
        limit=limit, cursor=cursor, sort=sort or ["created_at"], parent_id=task_id
    )
    body = await reader.subtasks_json(principal.user_id, query)
    return conditional_json_response(body, if_none_match)


@router.post(
    "/{task_id}/restore",
    response_model=TaskOut,
    summary="Restore a task from the trash",
    description="Brings the task back with the subtasks that were deleted together with it "
    "(not those deleted before it, on their own); each gets a new `version` and appears in "
    "the change feed. Restoring a task that is not deleted answers it unchanged (a retried "
    "restore is harmless). 404 when it is not in the trash: never existed, purged, deleted "
    "more than `PURGE_RETENTION_DAYS` ago, or another user's. 409 `parent-deleted` when the "
    "task is a subtask whose parent is still in the trash (restore the parent: it brings "
    "the subtask back), 409 `subtree-too-deep` when its parent has since moved so deep "
    "that the subtasks would nest more than three levels. Needs the scope `tasks:write`.",
    responses={200: {"headers": ETAG_HEADER}, **documented_problems(400, 401, 404, 409)},
)
async def restore_task(
    task_id: TaskId, principal: TasksWriter, tasks: TaskServiceDep, resources: ResourcesDep
) -> Response:
    task = await tasks.restore(principal.user_id, task_id, kept_for=_kept_for(resources))
    return json_response(render_task(task))
