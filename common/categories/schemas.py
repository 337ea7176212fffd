"""Category representations (rendered in common: the cache stores their bytes)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from pydantic import BaseModel, Field
from pydantic_core import to_json

from common.models import Category


@dataclass(frozen=True, slots=True)
class CategoryWithCount:
    category: Category
    task_count: int


class CategoryOut(BaseModel):
    id: uuid.UUID = Field(examples=["5b0c6a1e-4d0f-4c8e-9a55-3f1f2b8f9e10"])
    name: str = Field(examples=["Work"])
    color: str | None = Field(description="`#RRGGBB`, upper case", examples=["#1E90FF"])
    task_count: int = Field(description="Live (not deleted) tasks in the category", examples=[7])
    created_at: datetime = Field(examples=["2026-11-20T09:12:44Z"])
    updated_at: datetime = Field(examples=["2026-11-24T16:03:10Z"])


class CategoryList(BaseModel):
    items: list[CategoryOut]
    total: int = Field(description="All your categories, on every page", examples=[1])
    next_cursor: str | None = Field(
        description="With `limit`: send it as `cursor` for the next page; null on the last",
        examples=[None],
    )


def category_out(found: CategoryWithCount) -> CategoryOut:
    category = found.category
    return CategoryOut(
        id=category.id,
        name=category.name,
        color=category.color,
        task_count=found.task_count,
        created_at=category.created_at,
        updated_at=category.updated_at,
    )


def render_category(found: CategoryWithCount) -> bytes:
    return to_json(category_out(found))


def render_category_list(
    found: Sequence[CategoryWithCount], *, total: int, next_cursor: str | None
) -> bytes:
    items = [category_out(item) for item in found]
    return to_json(CategoryList(items=items, total=total, next_cursor=next_cursor))
