"""Data exports: asked for by the owner, built by a job, downloaded for a day, then purged.

The archive is stored in PostgreSQL (`account_exports.archive`, at most `EXPORT_MAX_BYTES`,
64 MiB by default), where every API replica can read it and the erasure and the purge find
it; at that size a bytea column costs less to run than an object store. It is kept
uncompressed by PostgreSQL (already a zip), so a download reads it slice by slice
(`substring`) on short-lived connections and never holds the whole archive in memory.

Building is one job that can die anywhere and run again: it claims the export (`running`,
committed), builds the archive in a read-only transaction of its own, and stores it with
`ready` in a last transaction that also enqueues the mail, only if the export is still
unfinished. A rerun after a crash rebuilds from scratch; a rerun after success does nothing.
An export left unfinished for an hour (its job failed for good) no longer blocks a new one.
"""

from __future__ import annotations

import hmac
import uuid
from base64 import urlsafe_b64encode
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.exc import IntegrityError

from common.accounts.errors import ArchiveTooLarge, ExportRunning, ExportsSpent
from common.accounts.export_archive import build_archive
from common.accounts.repository import ExportArchiveReader, ExportRepository
from common.auth.activity import ActivityLog
from common.config import Settings
from common.db.session import ReadConnection
from common.db.uow import UnitOfWork
from common.errors import NotFound
from common.jobs import JobName, Queue
from common.logging import get_logger
from common.models import AccountExport, ActivityKind, ExportStatus
from common.security.mail_quota import MailKind, reserve_mails
from common.security.network import Client
from common.users.repository import UserRepository

log = get_logger(__name__)

STALE_AFTER = timedelta(hours=1)
"""An export still unfinished this long after it was asked for has lost its job."""
DOWNLOAD_SLICE = 1024 * 1024


def download_token(settings: Settings, export_id: uuid.UUID) -> str:
    """The secret of a download link: an HMAC of the export's id (nothing to store)."""
    digest = hmac.new(
        settings.jwt_secret.get_secret_value().encode(), b"export:" + export_id.bytes, "sha256"
    ).digest()
    return urlsafe_b64encode(digest).rstrip(b"=").decode()


def download_url(settings: Settings, export_id: uuid.UUID) -> str:
    token = download_token(settings, export_id)
    return f"{settings.public_url}/api/v1/exports/{export_id}/archive?token={token}"


@dataclass(frozen=True, slots=True)
class Download:
    export_id: uuid.UUID
    size: int
    filename: str


@dataclass(frozen=True, slots=True)
class ExportMail:
    export_id: uuid.UUID
    address: str
    url: str
    expires_at: datetime
    size: int


class ExportService:
    def __init__(self, uow: UnitOfWork, settings: Settings) -> None:
        self._uow = uow
        self._settings = settings
        self._exports = ExportRepository(uow.session)

    async def request(self, user_id: uuid.UUID, client: Client) -> AccountExport:
        """A new pending export and its job: 409 while another is unfinished, 429 past the
        day's allowance."""
        session = self._uow.session
        now = datetime.now(UTC)
        await self._exports.fail_unfinished(
            user_id, asked_before=now - STALE_AFTER, failure="The job did not finish", now=now
        )
        recent = await self._exports.count_asked_since(user_id, now - timedelta(days=1))
        allowed = self._settings.exports_per_user_per_day
        if recent >= allowed:
            raise ExportsSpent(
                f"At most {allowed} exports a day; try again later",
                headers={"Retry-After": "3600"},
            )
        export = AccountExport(id=uuid.uuid4(), user_id=user_id, status=ExportStatus.PENDING)
        self._exports.add(export)
        try:
            await session.flush()
        except IntegrityError as exc:  # the partial unique index: one unfinished per user
            raise ExportRunning("Wait for the export being prepared to finish") from exc
        await session.refresh(export)
        ActivityLog(session).record(
            user_id, ActivityKind.EXPORT_REQUESTED, client, export_id=str(export.id)
        )
        self._uow.enqueue(JobName.BUILD_EXPORT, Queue.MAINTENANCE, export_id=str(export.id))
        return export

    async def get(self, user_id: uuid.UUID, export_id: uuid.UUID) -> AccountExport:
        export = await self._exports.get_of_user(user_id, export_id)
        if export is None:
            raise NotFound("No such export")
        return export

    async def open_download(self, export_id: uuid.UUID, token: str, client: Client) -> Download:
        """The export behind a download link, if the link is right, the export ready and not
        expired, and its account not being deleted (404 otherwise, whichever it is); the
        download is recorded."""
        expected = download_token(self._settings, export_id)
        export = await self._exports.get_for_download(export_id)
        usable = (
            hmac.compare_digest(token.encode(), expected.encode())
            and export is not None
            and export.status is ExportStatus.READY
            and export.expires_at is not None
            and export.expires_at > datetime.now(UTC)
        )
        if not usable:
            raise NotFound("No such export, or its link expired")
        assert export is not None
        assert export.size_bytes is not None
        assert export.finished_at is not None
        ActivityLog(self._uow.session).record(
            export.user_id, ActivityKind.EXPORT_DOWNLOADED, client, export_id=str(export.id)
        )
        stamp = export.finished_at.astimezone(UTC).strftime("%Y%m%d-%H%M%S")
        return Download(export.id, export.size_bytes, f"taskpipe-export-{stamp}.zip")

    async def to_mail(self, export_id: uuid.UUID) -> ExportMail | None:
        """The ready-mail a job should send; None when the export is gone or expired, or the
        address is not verified (a download link to a stranger's address would hand them the
        data)."""
        export = await self._exports.get(export_id)
        if export is None or export.status is not ExportStatus.READY or export.expires_at is None:
            return None
        user = await UserRepository(self._uow.session).get(export.user_id)
        if user is None or user.email_verified_at is None or user.deletion_pending:
            return None
        assert export.size_bytes is not None
        url = download_url(self._settings, export.id)
        return ExportMail(export.id, user.email, url, export.expires_at, export.size_bytes)


async def stream_archive(
    reads: ReadConnection, export_id: uuid.UUID, size: int
) -> AsyncIterator[bytes]:
    """The archive in slices, each read on a connection of its own: a slow client holds no
    pooled connection between them."""
    for offset in range(0, size, DOWNLOAD_SLICE):
        async with reads() as connection:
            chunk = await ExportArchiveReader(connection).slice(export_id, offset, DOWNLOAD_SLICE)
        if chunk is None:  # purged while being read
            return
        yield chunk


async def build_export(
    units: Callable[[], UnitOfWork], settings: Settings, export_id: uuid.UUID
) -> ExportStatus | None:
    """Claim, build, store (see the module docstring); the export's final status, or None
    when there was nothing to do (finished already, or gone with its user)."""
    now = datetime.now(UTC)
    async with units() as uow:
        user_id = await ExportRepository(uow.session).claim(export_id, now)
    if user_id is None:
        log.info("export_skipped", export_id=str(export_id))
        return None
    try:
        async with units() as uow:
            user = await UserRepository(uow.session).get(user_id)
            if user is None or user.deletion_pending:
                failure = "The account is being deleted"
                await _finish(uow, export_id, status=ExportStatus.FAILED, failure=failure)
                return ExportStatus.FAILED
            archive = await build_archive(
                uow.session, user, now=now, max_bytes=settings.export_max_bytes
            )
    except ArchiveTooLarge as exc:
        async with units() as uow:
            await _finish(uow, export_id, status=ExportStatus.FAILED, failure=exc.detail)
        log.warning("export_too_large", export_id=str(export_id))
        return ExportStatus.FAILED
    async with units() as uow:
        stored = await _finish(
            uow,
            export_id,
            status=ExportStatus.READY,
            archive=archive,
            size_bytes=len(archive),
            expires_at=datetime.now(UTC) + timedelta(seconds=settings.export_link_ttl),
        )
        if stored:
            await _mail_when_ready(uow, settings, user_id, export_id)
    log.info("export_ready", export_id=str(export_id), size_bytes=len(archive))
    return ExportStatus.READY if stored else None


async def _finish(uow: UnitOfWork, export_id: uuid.UUID, **values: object) -> bool:
    return await ExportRepository(uow.session).finish(
        export_id, finished_at=datetime.now(UTC), **values
    )


async def _mail_when_ready(
    uow: UnitOfWork, settings: Settings, user_id: uuid.UUID, export_id: uuid.UUID
) -> None:
    user = await UserRepository(uow.session).get(user_id)
    if user is None or user.email_verified_at is None:
        return
    now = datetime.now(UTC)
    if not await reserve_mails(uow.session, settings, [user.email], now=now, kind=MailKind.NOTICE):
        log.warning("export_mail_skipped", export_id=str(export_id))
        return
    uow.enqueue(JobName.SEND_EXPORT_READY, Queue.EMAIL, export_id=str(export_id))
