"""Errors specific to categories."""

from __future__ import annotations

from common.errors import Conflict, NotFound


class CategoryNotFound(NotFound):
    def __init__(self) -> None:
        super().__init__("Category not found")


class CategoryNameTaken(Conflict):
    code = "category-name-taken"
    title = "Category name taken"

    def __init__(self, name: str) -> None:
        super().__init__(f"You already have a category named {name!r} (names ignore case)")
