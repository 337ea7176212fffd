"""Category request bodies (responses are rendered in `common.categories.schemas`)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, Field

from api.schemas.base import RequestModel, not_null, refuse_null
from common.categories.schemas import CategoryList, CategoryOut
from common.models.text import single_line

__all__ = ["CategoryCreate", "CategoryList", "CategoryOut", "CategoryUpdate"]

CategoryName = Annotated[
    str,
    Field(min_length=3, max_length=50, examples=["Work"]),
    AfterValidator(single_line),
]
Color = Annotated[
    str,
    Field(
        pattern=r"^#[0-9A-Fa-f]{6}$",
        description="`#RRGGBB`; stored and returned in upper case",
        examples=["#1e90ff"],
    ),
    AfterValidator(str.upper),
]


class CategoryCreate(RequestModel):
    name: CategoryName
    color: Color | None = None


class CategoryUpdate(RequestModel):
    """Only the fields sent change; `color` may be set to null, `name` may not."""

    name: CategoryName | None = Field(default=None, json_schema_extra=not_null)
    color: Color | None = None

    _refuse_null = refuse_null("name")

    def changes(self) -> dict[str, Any]:
        return self.model_dump(exclude_unset=True)
