"""Task indexes for list counts and the overdue filter.

`ix_tasks_user_live`: counting a user's live tasks (the `total` of every list page) is an
index-only scan of a deduplicated single-column index, instead of a sequential scan once one
user holds most of the table. `ix_tasks_user_open_due`: `overdue=true` (due in the past and
still pending or in progress) is a range of one partial index instead of a filter over all due
tasks. Measured at 50k tasks for one user: tests/integration/test_task_indexes.py.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 07:20:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_tasks_user_live",
        "tasks",
        ["user_id"],
        unique=False,
        postgresql_where=sa.text("deleted_at IS NULL"),
    )
    op.create_index(
        "ix_tasks_user_open_due",
        "tasks",
        ["user_id", "due_date", "id"],
        unique=False,
        postgresql_where=sa.text("deleted_at IS NULL AND status IN ('pending', 'in_progress')"),
    )


def downgrade() -> None:
    op.drop_index("ix_tasks_user_open_due", table_name="tasks")
    op.drop_index("ix_tasks_user_live", table_name="tasks")
