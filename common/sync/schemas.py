"""The change feed's documented shape (OpenAPI); `common.sync.reader` renders it from rows."""

from __future__ import annotations

import uuid
from typing import Literal

from pydantic import BaseModel, Field

from common.categories.schemas import CategoryOut
from common.tasks.schemas import TaskOut


class Change(BaseModel):
    kind: Literal["task", "category"]
    id: uuid.UUID = Field(examples=["7d0f0c39-6a3e-4cbe-9e9e-0f7f4f1d3c1a"])
    op: Literal["upsert", "delete"] = Field(
        description="`upsert`: create or replace your copy with `data`; `delete`: drop it "
        "(a tombstone: the task was deleted or purged, the category deleted)"
    )
    seq: int = Field(
        description="The entity's latest change, increasing per account in commit order",
        examples=[42],
    )
    data: TaskOut | CategoryOut | None = Field(
        default=None,
        description="Upserts only: the entity as `GET /tasks/{id}` or `GET /categories/{id}` "
        "shows it now",
    )


class SyncPage(BaseModel):
    changes: list[Change] = Field(description="In `seq` order")
    next_cursor: str = Field(
        description="Send it as `since` next time (opaque; also when `changes` is empty)",
        examples=["eyJrIjoic3luYyIsInUiOiI..."],
    )
    has_more: bool = Field(description="More changes follow at once: ask again with next_cursor")
