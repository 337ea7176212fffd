"""Data exports: asked for by a session, built by the worker, downloaded through a link."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, status
from starlette.responses import StreamingResponse

from api.boundary import UnitOfWorkRoute
from api.deps import AccountOwner, AuthServiceDep, ClientDep, ResourcesDep, UnitOfWorkDep
from api.problems import problem_responses
from api.schemas.accounts import ExportOut
from api.schemas.auth import OpaqueToken
from common.accounts.exports import ExportService, download_url, stream_archive
from common.models import AccountExport, ExportStatus

router = APIRouter(prefix="/api/v1", tags=["exports"], route_class=UnitOfWorkRoute)

ARCHIVE = (
    "One zip: `taskpipe-export.json` (profile, categories, every task including soft-deleted "
    "ones still within `TASKPIPE_PURGE_RETENTION_DAYS`) and `tasks.csv`. Stored in PostgreSQL "
    "(at most `TASKPIPE_EXPORT_MAX_BYTES`, 64 MiB: a larger one fails with `failure` set), "
    "downloadable for `TASKPIPE_EXPORT_LINK_TTL` (24 h), then purged."
)


async def get_export_service(uow: UnitOfWorkDep, resources: ResourcesDep) -> ExportService:
    return ExportService(uow, resources.settings)


ExportServiceDep = Annotated[ExportService, Depends(get_export_service)]
ExportId = Annotated[uuid.UUID, Path(description="The export's id (a malformed one is a 400)")]


def _shown(export: AccountExport, resources: ResourcesDep) -> ExportOut:
    shown = ExportOut.model_validate(export)
    live = export.expires_at is not None and export.expires_at > datetime.now(UTC)
    if export.status is ExportStatus.READY and live:
        shown.download_url = download_url(resources.settings, export.id)
    return shown


@router.post(
    "/users/me/exports",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Export your data",
    description=f"{ARCHIVE} The worker builds it; poll `GET /users/me/exports/{{id}}` for "
    "`download_url`, and a mail with the link goes to your address if it is verified. One "
    "unfinished export per account (409 `export-running`) and "
    "`TASKPIPE_EXPORTS_PER_USER_PER_DAY` (3) a day (429 `export-limit`). Sessions only.",
    responses=problem_responses(401, 403, 409, 429),
)
async def request_export(
    principal: AccountOwner, exports: ExportServiceDep, client: ClientDep, resources: ResourcesDep
) -> ExportOut:
    return _shown(await exports.request(principal.user_id, client), resources)


@router.get(
    "/users/me/exports/{export_id}",
    summary="An export's status",
    description="`pending`, `running`, `ready` (with `download_url` until `expires_at`) or "
    "`failed` (with `failure`). Another user's export answers 404. Sessions only.",
    responses=problem_responses(400, 401, 403, 404, 429),
)
async def get_export(
    export_id: ExportId, principal: AccountOwner, exports: ExportServiceDep, resources: ResourcesDep
) -> ExportOut:
    return _shown(await exports.get(principal.user_id, export_id), resources)


@router.get(
    "/exports/{export_id}/archive",
    summary="Download an export (the link in the mail)",
    description=f"{ARCHIVE} The link is the credential (no Authorization header, so a browser "
    "can follow it): a wrong token, an export not ready, expired or purged all answer 404. "
    "Each download is recorded in the owner's activity. Rate limited per IP like the other "
    "mailed links.",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"application/zip": {}}, "description": "The archive"},
        **problem_responses(400, 404, 429, 503),
    },
)
async def download_export(
    export_id: ExportId,
    token: Annotated[OpaqueToken, Query(description="The token of the download link")],
    exports: ExportServiceDep,
    auth: AuthServiceDep,
    client: ClientDep,
    resources: ResourcesDep,
) -> StreamingResponse:
    await auth.limit_link_guesses(client)
    download = await exports.open_download(export_id, token, client)
    return StreamingResponse(
        stream_archive(resources.reads, download.export_id, download.size),
        media_type="application/zip",
        headers={
            "Content-Disposition": f'attachment; filename="{download.filename}"',
            "Content-Length": str(download.size),
            "Cache-Control": "private, no-store",
        },
    )
