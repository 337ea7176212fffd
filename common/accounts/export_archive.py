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
from collections.abc import AsyncIterator, Iterable, Mapping
from datetime import datetime
from tempfile import SpooledTemporaryFile
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncSession

from common.accounts.errors import ArchiveTooLarge
from common.accounts.repository import EXPORTED_TASK_COLUMNS, ExportRepository
from common.models import User

JSON_NAME = "taskpipe-export.json"
CSV_NAME = "tasks.csv"
FORMAT_VERSION = 1
PAGE = 1000
SPILL_BYTES = 8 * 1024 * 1024
_PROFILE = ("id", "email", "full_name", "timezone", "reminder_minutes_before", "created_at")
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


_TASK_FIELDS = [column.name for column in EXPORTED_TASK_COLUMNS]
CSV_HEADER = [*_TASK_FIELDS, "categories"]


async def build_archive(
    session: AsyncSession, user: User, *, now: datetime, max_bytes: int
) -> bytes:
    exports = ExportRepository(session)
    categories = await exports.categories(user.id)
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
                async for task, category_ids in _tasks(exports, user):
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


async def _tasks(
    exports: ExportRepository, user: User
) -> AsyncIterator[tuple[dict[str, Any], list[Any]]]:
    """Live tasks, then soft-deleted ones, a page at a time, each with its category ids."""
    for deleted in (False, True):
        after: tuple[Any, Any] | None = None
        while True:
            page = await exports.task_page(user.id, deleted=deleted, after=after, limit=PAGE)
            if not page:
                break
            links = await exports.category_ids([row.id for row in page])
            for row in page:
                yield dict(row._mapping), links.get(row.id, [])
            after = (page[-1].created_at, page[-1].id)
            if len(page) < PAGE:
                break


def _csv_row(task: Mapping[str, Any], category_names: Iterable[str]) -> list[str]:
    values = [task[name] for name in _TASK_FIELDS] + ["; ".join(sorted(category_names))]
    return [_cell(value) for value in values]


def _cell(value: Any) -> str:
    if value is None:
        return ""
    text = value.isoformat() if isinstance(value, datetime) else str(value)
    return "'" + text if text.startswith(_FORMULA_STARTS) else text
