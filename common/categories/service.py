"""Category rules: per-user names unique regardless of case, live task counts, caching.

Every write records a `CategoryChanged` in the unit of work (its subscribers invalidate the
owner's cached pages after the commit)."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.exc import IntegrityError

from common.cache import ResponseCache
from common.categories.errors import CategoryNameTaken, CategoryNotFound
from common.categories.repository import CategoryRepository
from common.categories.schemas import CategoryWithCount, render_category_list
from common.cursors import Cursors
from common.db.changes import CategoryChanged, ChangeKind
from common.db.uow import UnitOfWork
from common.logging import get_logger

log = get_logger(__name__)

UNIQUE_NAME_INDEX = "uq_categories_user_name"
CURSOR_KIND = "categories"
EDITABLE_FIELDS = frozenset({"name", "color"})


def _is_name_conflict(exc: IntegrityError) -> bool:
    return UNIQUE_NAME_INDEX in str(exc.orig)


class CategoryService:
    def __init__(self, uow: UnitOfWork, cache: ResponseCache, cursors: Cursors) -> None:
        self._uow = uow
        self._cache = cache
        self._cursors = cursors
        self._categories = CategoryRepository(uow.session)

    async def list_json(
        self, user_id: uuid.UUID, *, limit: int | None = None, cursor: str | None = None
    ) -> bytes:
        """Every category, or pages of `limit` with `next_cursor`; after `cursor` when given
        (a position: the name of the last category seen)."""
        after = None
        if cursor is not None:
            position = self._cursors.open(CURSOR_KIND, user_id, cursor, parameter="cursor")
            after = str(position["n"])

        async def build() -> bytes:
            found = await self._categories.list_with_counts(
                user_id, after_name=after, limit=None if limit is None else limit + 1
            )
            more = limit is not None and len(found) > limit
            found = found[:limit]
            total = len(found)
            if after is not None or more:
                total = await self._categories.count(user_id)
            next_cursor = None
            if more:
                last = {"n": found[-1].category.name}
                next_cursor = self._cursors.sign(CURSOR_KIND, user_id, last)
            return render_category_list(found, total=total, next_cursor=next_cursor)

        key = "all" if limit is None and cursor is None else f"{limit}:{cursor}"
        return await self._cache.get_or_build(user_id, "categories", key, build)

    async def get(self, user_id: uuid.UUID, category_id: uuid.UUID) -> CategoryWithCount:
        found = await self._categories.get_with_count(user_id, category_id)
        if found is None:
            raise CategoryNotFound()
        return found

    async def create(self, user_id: uuid.UUID, name: str, color: str | None) -> CategoryWithCount:
        category = await self._categories.insert_unless_name_taken(user_id, name, color)
        if category is None:
            raise CategoryNameTaken(name)
        self._changed(user_id, category.id, ChangeKind.CREATED)
        log.info("category_created", category_id=str(category.id))
        return CategoryWithCount(category, 0)

    async def update(
        self, user_id: uuid.UUID, category_id: uuid.UUID, changes: dict[str, Any]
    ) -> CategoryWithCount:
        unknown = set(changes) - EDITABLE_FIELDS
        if unknown:
            raise ValueError(f"not editable: {sorted(unknown)}")
        if changes:
            try:
                async with self._uow.session.begin_nested():
                    updated = await self._categories.update(user_id, category_id, changes)
            except IntegrityError as exc:
                if not _is_name_conflict(exc):
                    raise
                raise CategoryNameTaken(str(changes["name"])) from exc
            if not updated:
                raise CategoryNotFound()
            self._changed(user_id, category_id)
        return await self.get(user_id, category_id)

    async def delete(self, user_id: uuid.UUID, category_id: uuid.UUID) -> None:
        """Removes the category and its links to tasks; the tasks stay."""
        if not await self._categories.delete(user_id, category_id):
            raise CategoryNotFound()
        self._changed(user_id, category_id, ChangeKind.DELETED)
        log.info("category_deleted", category_id=str(category_id))

    def _changed(
        self, user_id: uuid.UUID, category_id: uuid.UUID, kind: ChangeKind = ChangeKind.UPDATED
    ) -> None:
        self._uow.record(CategoryChanged(user_id, category_id, kind))
