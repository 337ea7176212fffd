"""SQL for personal access tokens, data exports and the deletion of accounts."""

from __future__ import annotations

import enum
import uuid
from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Row, delete, exists, func, or_, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from common.jobs import JobName
from common.models import (
    AccountExport,
    Category,
    ExportStatus,
    OutboxJob,
    PersonalAccessToken,
    Task,
    User,
    task_categories,
)
from common.models.accounts import UNFINISHED_EXPORT, UNFINISHED_EXPORT_STATUSES

STAMP_INTERVAL = timedelta(minutes=1)
"""`last_used_at` is accurate to this (a write per request would cost more than the read)."""


def _owned_columns(model: type[Task] | type[Category]) -> list[Any]:
    return [column for column in model.__table__.columns if column.name != "user_id"]


EXPORTED_TASK_COLUMNS = _owned_columns(Task)
"""Every column but the owner's id: a column added later is in the next export as it is."""


class PersonalTokenRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    def add(self, token: PersonalAccessToken) -> None:
        self._session.add(token)

    async def count_of_user(self, user_id: uuid.UUID) -> int:
        """Expired ones too: they count against the limit until the purge removes them."""
        return (
            await self._session.scalar(
                select(func.count())
                .select_from(PersonalAccessToken)
                .where(PersonalAccessToken.user_id == user_id)
            )
        ) or 0

    async def of_user(self, user_id: uuid.UUID) -> list[PersonalAccessToken]:
        rows = await self._session.execute(
            select(PersonalAccessToken)
            .where(PersonalAccessToken.user_id == user_id)
            .order_by(PersonalAccessToken.created_at.desc(), PersonalAccessToken.id)
        )
        return list(rows.scalars())

    async def delete(self, user_id: uuid.UUID, token_id: uuid.UUID) -> str | None:
        """The deleted token's name; None when the user has no such token."""
        gone = await self._session.execute(
            delete(PersonalAccessToken)
            .where(PersonalAccessToken.id == token_id, PersonalAccessToken.user_id == user_id)
            .returning(PersonalAccessToken.name)
        )
        return gone.scalar_one_or_none()

    async def delete_all(self, user_id: uuid.UUID) -> list[uuid.UUID]:
        """The ids of the deleted tokens."""
        gone = await self._session.execute(
            delete(PersonalAccessToken)
            .where(PersonalAccessToken.user_id == user_id)
            .returning(PersonalAccessToken.id)
        )
        return list(gone.scalars())


class PersonalTokenLookup:
    """The check of a presented token, on a connection of its own (no unit of work)."""

    def __init__(self, connection: AsyncConnection) -> None:
        self._connection = connection

    async def identity(self, digest: str) -> Row[uuid.UUID, uuid.UUID, list[str], datetime] | None:
        """The token's id, owner, scopes and expiry. One round trip: it also stamps the
        token's last use if that is a minute old (a data-modifying CTE runs whether or not
        the query reads it)."""
        table = PersonalAccessToken
        stamp = (
            update(table)
            .where(
                table.token_hash == digest,
                table.expires_at > func.now(),
                or_(
                    table.last_used_at.is_(None),
                    table.last_used_at < func.now() - STAMP_INTERVAL,
                ),
            )
            .values(last_used_at=func.now())
            .cte("stamp")
        )
        query = (
            select(table.id, table.user_id, table.scopes, table.expires_at)
            .where(table.token_hash == digest)
            .add_cte(stamp)
        )
        return (await self._connection.execute(query)).one_or_none()


class ExportRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    def add(self, export: AccountExport) -> None:
        self._session.add(export)

    async def fail_unfinished(
        self, user_id: uuid.UUID, *, asked_before: datetime, failure: str, now: datetime
    ) -> None:
        """Fail the user's exports asked for before `asked_before` and still unfinished: their
        job was lost, and an unfinished export blocks a new one (the partial unique index)."""
        await self._session.execute(
            update(AccountExport)
            .where(
                AccountExport.user_id == user_id,
                UNFINISHED_EXPORT,
                AccountExport.created_at < asked_before,
            )
            .values(status=ExportStatus.FAILED, failure=failure, finished_at=now)
        )

    async def count_asked_since(self, user_id: uuid.UUID, since: datetime) -> int:
        return (
            await self._session.scalar(
                select(func.count())
                .select_from(AccountExport)
                .where(AccountExport.user_id == user_id, AccountExport.created_at > since)
            )
        ) or 0

    async def get(self, export_id: uuid.UUID) -> AccountExport | None:
        return await self._session.scalar(
            select(AccountExport).where(AccountExport.id == export_id)
        )

    async def get_of_user(self, user_id: uuid.UUID, export_id: uuid.UUID) -> AccountExport | None:
        return await self._session.scalar(
            select(AccountExport).where(
                AccountExport.id == export_id, AccountExport.user_id == user_id
            )
        )

    async def get_for_download(self, export_id: uuid.UUID) -> AccountExport | None:
        """None also while its account is being deleted: the data is no longer handed out."""
        return await self._session.scalar(
            select(AccountExport)
            .join(User, User.id == AccountExport.user_id)
            .where(AccountExport.id == export_id, User.deletion_requested_at.is_(None))
        )

    async def claim(self, export_id: uuid.UUID, now: datetime) -> uuid.UUID | None:
        """Mark an unfinished export running; its owner's id, None when it is finished or
        gone (a job run again after success then does nothing)."""
        claimed = await self._session.execute(
            update(AccountExport)
            .where(
                AccountExport.id == export_id,
                AccountExport.status.in_(UNFINISHED_EXPORT_STATUSES),
            )
            .values(status=ExportStatus.RUNNING, started_at=now)
            .returning(AccountExport.user_id)
        )
        return claimed.scalar_one_or_none()

    async def finish(self, export_id: uuid.UUID, **values: object) -> bool:
        """Set the final values of an unfinished export; False when it was finished already."""
        finished = await self._session.execute(
            update(AccountExport)
            .where(
                AccountExport.id == export_id,
                AccountExport.status.in_(UNFINISHED_EXPORT_STATUSES),
            )
            .values(**values)
            .returning(AccountExport.id)
        )
        return finished.first() is not None

    async def categories(self, user_id: uuid.UUID) -> list[dict[str, Any]]:
        """The user's categories as exported, by name."""
        rows = await self._session.execute(
            select(*_owned_columns(Category))
            .where(Category.user_id == user_id)
            .order_by(Category.name)
        )
        return [dict(row._mapping) for row in rows]

    async def task_page(
        self,
        user_id: uuid.UUID,
        *,
        deleted: bool,
        after: tuple[Any, Any] | None,
        limit: int,
    ) -> Sequence[Row[Any]]:
        """The user's live (or soft-deleted) tasks as exported, in creation order after the
        `(created_at, id)` position `after`; each set is read on the index that serves it."""
        kept = Task.deleted_at.is_not(None) if deleted else Task.deleted_at.is_(None)
        stmt = select(*EXPORTED_TASK_COLUMNS).where(Task.user_id == user_id, kept)
        if after is not None:
            stmt = stmt.where(tuple_(Task.created_at, Task.id) > after)
        return (
            await self._session.execute(stmt.order_by(Task.created_at, Task.id).limit(limit))
        ).all()

    async def category_ids(self, task_ids: list[Any]) -> Mapping[Any, list[Any]]:
        """The ids of each task's categories, by task id."""
        rows = await self._session.execute(
            select(task_categories.c.task_id, task_categories.c.category_id).where(
                task_categories.c.task_id.in_(task_ids)
            )
        )
        links: defaultdict[Any, list[Any]] = defaultdict(list)
        for task_id, category_id in rows:
            links[task_id].append(category_id)
        return links


class ExportArchiveReader:
    """Reads of a stored archive, on a connection of its own (no unit of work)."""

    def __init__(self, connection: AsyncConnection) -> None:
        self._connection = connection

    async def slice(self, export_id: uuid.UUID, offset: int, length: int) -> bytes | None:
        """`length` bytes of the archive from `offset` (0-based); None when the export is
        gone. PostgreSQL keeps the archive uncompressed, so it reads only that slice."""
        archive = AccountExport.__table__.c.archive
        chunk = await self._connection.scalar(
            select(func.substring(archive, offset + 1, length)).where(
                AccountExport.__table__.c.id == export_id
            )
        )
        return None if chunk is None else bytes(chunk)


class ErasureStep(enum.Enum):
    """The big tables, in the order the erasure empties them: live tasks and deleted ones
    (each on its own index), then categories (their task links go with either side)."""

    LIVE_TASKS = "live_tasks"
    DELETED_TASKS = "deleted_tasks"
    CATEGORIES = "categories"


def _erased_rows(
    step: ErasureStep,
) -> tuple[type[Task] | type[Category], ColumnElement[bool] | None]:
    match step:
        case ErasureStep.LIVE_TASKS:
            return Task, Task.deleted_at.is_(None)
        case ErasureStep.DELETED_TASKS:
            return Task, Task.deleted_at.is_not(None)
        case ErasureStep.CATEGORIES:
            return Category, None


class DeletionRepository:
    """Accounts asked to be deleted: restored within their grace period, erased after it.
    The grace period is judged by the database's clock, by both sides."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def restorable_for_update(self, user_id: uuid.UUID) -> User | None:
        """The user, locked, unless their grace period is over (or they are gone)."""
        return await self._session.scalar(
            select(User).where(User.id == user_id, User.erase_after > func.now()).with_for_update()
        )

    async def due(self, *, limit: int) -> list[uuid.UUID]:
        """Accounts whose grace period is over, longest due first."""
        rows = await self._session.execute(
            select(User.id)
            .where(User.erase_after <= func.now())
            .order_by(User.erase_after)
            .limit(limit)
        )
        return list(rows.scalars())

    async def is_due(self, user_id: uuid.UUID) -> bool:
        due = await self._session.scalar(
            select(User.id).where(User.id == user_id, User.erase_after <= func.now())
        )
        return due is not None

    async def delete_batch(self, step: ErasureStep, user_id: uuid.UUID, limit: int) -> int:
        """Delete at most `limit` of the user's rows of this step; how many went."""
        model, condition = _erased_rows(step)
        doomed = select(model.id).where(model.user_id == user_id)
        if condition is not None:
            doomed = doomed.where(condition)
        result = await self._session.execute(
            delete(model).where(model.id.in_(doomed.limit(limit))).returning(model.id)
        )
        return len(result.all())

    async def awaits_notice(self, user_id: uuid.UUID, *, requested_within: timedelta) -> bool:
        """True while a notice of the account is still in the outbox and the deletion was
        asked for less than `requested_within` ago."""
        waiting = exists().where(
            OutboxJob.task_name == JobName.SEND_ACCOUNT_NOTICE,
            OutboxJob.kwargs.contains({"user_id": str(user_id)}),
        )
        recent = select(User.id).where(
            User.id == user_id, User.deletion_requested_at > func.now() - requested_within, waiting
        )
        return await self._session.scalar(recent) is not None

    async def delete_user_if_due(self, user_id: uuid.UUID) -> bool:
        """The user row, whose ON DELETE CASCADE takes what the batches left; False when it
        is gone already or was restored."""
        gone = await self._session.execute(
            delete(User)
            .where(User.id == user_id, User.erase_after <= func.now())
            .returning(User.id)
        )
        return gone.first() is not None
