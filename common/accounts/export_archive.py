"""The export archive: one zip holding `taskpipe-export.json` (the profile, the categories and
every task, soft-deleted ones still in retention included) and `tasks.csv` (the tasks again,
for spreadsheets).

Tasks and categories are exported with every column they have, but their owner's id: a column
added later (recurrence, subtasks, ...) is in the next export without a change here. The
profile is an explicit list (never the password hash). Tasks are read in keyset pages and
written as they come, and both the archive and the CSV spill to disk past a few MiB, so memory
stays bounded whatever the account's size; an archive past `EXPORT_MAX_BYTES` is refused.

CSV cells that a spreadsheet would run as a formula (starting with `=`, `+`, `-`, `@`, tab or
carriage return) get a leading `'` (OWASP, CSV injection); the JSON keeps every text as it is.
"""

from __future__ import annotations

import csv
import io
import zipfile
from collections import defaultdict
from collections.abc import AsyncIterator, Iterable, Mapping
from datetime import datetime
from tempfile import SpooledTemporaryFile
from typing import Any

import orjson
from sqlalchemy import ColumnElement, Select, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from common.accounts.errors import ArchiveTooLarge
from common.models import Category, Task, User, task_categories

JSON_NAME = "taskpipe-export.json"
CSV_NAME = "tasks.csv"
FORMAT_VERSION = 1
PAGE = 1000
SPILL_BYTES = 8 * 1024 * 1024
_PROFILE = ("id", "email", "full_name", "timezone", "reminder_minutes_before", "created_at")
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _owned_columns(model: type[Task] | type[Category]) -> list[Any]:
    return [column for column in model.__table__.columns if column.name != "user_id"]


_TASK_COLUMNS = _owned_columns(Task)
CSV_HEADER = [column.name for column in _TASK_COLUMNS] + ["categories"]


async def build_archive(
    session: AsyncSession, user: User, *, now: datetime, max_bytes: int
) -> bytes:
    categories = await _categories(session, user)
    names = {row["id"]: row["name"] for row in categories}
    with (
        SpooledTemporaryFile(max_size=SPILL_BYTES) as archive_file,
        SpooledTemporaryFile(max_size=SPILL_BYTES) as csv_file,
    ):
        with zipfile.ZipFile(archive_file, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            text = io.TextIOWrapper(csv_file, encoding="utf-8", newline="", write_through=True)
            rows = csv.writer(text)
            rows.writerow(CSV_HEADER)
            with archive.open(JSON_NAME, "w", force_zip64=True) as out:
                head = {
                    "format": FORMAT_VERSION,
                    "exported_at": now,
                    "profile": _profile(user),
                    "categories": categories,
                }
                out.write(_json(head)[:-1] + b',"tasks":[')
                first = True
                async for task, category_ids in _tasks(session, user):
                    entry = _json({**task, "category_ids": category_ids})
                    out.write((b"" if first else b",") + entry)
                    first = False
                    rows.writerow(_csv_row(task, (names[c] for c in category_ids)))
                    if archive_file.tell() + csv_file.tell() > max_bytes:
                        raise ArchiveTooLarge(f"The archive would exceed {max_bytes} bytes")
                out.write(b"]}")
            text.detach()
            csv_file.seek(0)
            with archive.open(CSV_NAME, "w", force_zip64=True) as out:
                while chunk := csv_file.read(1024 * 1024):
                    out.write(chunk)
        size = archive_file.tell()
        if size > max_bytes:
            raise ArchiveTooLarge(f"The archive would exceed {max_bytes} bytes")
        archive_file.seek(0)
        return archive_file.read()


def _json(value: Any) -> bytes:
    """orjson, with the values it does not know (asyncpg's own UUID type) as text."""
    return orjson.dumps(value, default=str)


def _profile(user: User) -> dict[str, Any]:
    profile = {name: getattr(user, name) for name in _PROFILE}
    profile["email_verified"] = user.email_verified_at is not None
    return profile


async def _categories(session: AsyncSession, user: User) -> list[dict[str, Any]]:
    rows = await session.execute(
        select(*_owned_columns(Category)).where(Category.user_id == user.id).order_by(Category.name)
    )
    return [dict(row._mapping) for row in rows]


async def _tasks(
    session: AsyncSession, user: User
) -> AsyncIterator[tuple[dict[str, Any], list[Any]]]:
    """Live tasks, then soft-deleted ones (each set read on the index that serves it), a
    page at a time, each with its category ids."""
    for kept in (Task.deleted_at.is_(None), Task.deleted_at.is_not(None)):
        after: tuple[Any, Any] | None = None
        while True:
            page = (await session.execute(_page(user, kept, after))).all()
            if not page:
                break
            links = await _category_links(session, [row.id for row in page])
            for row in page:
                yield dict(row._mapping), links.get(row.id, [])
            after = (page[-1].created_at, page[-1].id)
            if len(page) < PAGE:
                break


def _page(user: User, kept: ColumnElement[bool], after: tuple[Any, Any] | None) -> Select[Any]:
    stmt = select(*_TASK_COLUMNS).where(Task.user_id == user.id, kept)
    if after is not None:
        stmt = stmt.where(tuple_(Task.created_at, Task.id) > after)
    return stmt.order_by(Task.created_at, Task.id).limit(PAGE)


async def _category_links(session: AsyncSession, task_ids: list[Any]) -> Mapping[Any, list[Any]]:
    rows = await session.execute(
        select(task_categories.c.task_id, task_categories.c.category_id).where(
            task_categories.c.task_id.in_(task_ids)
        )
    )
    links: defaultdict[Any, list[Any]] = defaultdict(list)
    for task_id, category_id in rows:
        links[task_id].append(category_id)
    return links


def _csv_row(task: Mapping[str, Any], category_names: Iterable[str]) -> list[str]:
    values = [task[column.name] for column in _TASK_COLUMNS] + ["; ".join(sorted(category_names))]
    return [_cell(value) for value in values]


def _cell(value: Any) -> str:
    if value is None:
        return ""
    text = value.isoformat() if isinstance(value, datetime) else str(value)
    return "'" + text if text.startswith(_FORMULA_STARTS) else text
