"""Change feed, subtasks and the trash.

`change_counters` (one row per user: the last `change_seq` and the highest seq the purge
removed) and `change_feed` (one row per task or category: its latest change, in seq order per
user; tombstones found by age for the purge). `tasks.parent_id` for subtasks, with the indexes
their walks and counts use, and a per-user index of deleted tasks for the trash.

Existing data enters the feed: one upsert entry per category and per live task, numbered per
user (categories first, then tasks by their last change), so a client's first full sync sees
everything that existed before this revision. Deleted tasks get no tombstone: no client holds
a copy of them yet.

One transaction, like the migrations before it: the new task indexes are partial and start
out empty or small (no task has a parent yet; only deleted tasks enter the trash index), but
building them reads the table once, and writes to `tasks` wait for that scan.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26 09:00:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TASK_INDEXES = (
    ("ix_tasks_user_deleted", ["user_id", "deleted_at", "id"], "deleted_at IS NOT NULL"),
    ("ix_tasks_parent", ["parent_id"], "parent_id IS NOT NULL"),
    ("ix_tasks_live_children", ["parent_id", "status"], "deleted_at IS NULL AND parent_id IS NOT NULL"),
)


BACKFILL_FEED = """
INSERT INTO change_feed (user_id, kind, entity_id, seq, op, changed_at)
SELECT user_id, kind, id,
       row_number() OVER (PARTITION BY user_id ORDER BY kind_order, changed_at, id),
       'upsert', changed_at
FROM (
    SELECT user_id, 'category' AS kind, 0 AS kind_order, id, updated_at AS changed_at
    FROM categories
    UNION ALL
    SELECT user_id, 'task', 1, id, updated_at FROM tasks WHERE deleted_at IS NULL
) AS entities
"""
BACKFILL_COUNTERS = """
INSERT INTO change_counters (user_id, last_seq)
SELECT user_id, max(seq) FROM change_feed GROUP BY user_id
"""


def upgrade() -> None:
    op.create_table(
        "change_counters",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("last_seq", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("purged_through", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_change_counters_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_change_counters")),
    )
    op.create_table(
        "change_feed",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column(
            "kind",
            sa.Enum("task", "category", name="entity_kind", native_enum=False, create_constraint=True, length=10),
            nullable=False,
        ),
        sa.Column("entity_id", sa.Uuid(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column(
            "op",
            sa.Enum("upsert", "delete", name="change_op", native_enum=False, create_constraint=True, length=10),
            nullable=False,
        ),
        sa.Column("changed_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_change_feed_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("user_id", "kind", "entity_id", name=op.f("pk_change_feed")),
    )
    op.create_index("uq_change_feed_user_seq", "change_feed", ["user_id", "seq"], unique=True)
    op.create_index(
        "ix_change_feed_tombstones",
        "change_feed",
        ["changed_at"],
        unique=False,
        postgresql_where=sa.text("op = 'delete'"),
    )

    op.execute(BACKFILL_FEED)
    op.execute(BACKFILL_COUNTERS)

    op.add_column("tasks", sa.Column("parent_id", sa.Uuid(), nullable=True))
    op.create_foreign_key(
        op.f("fk_tasks_parent_id_tasks"),
        "tasks",
        "tasks",
        ["parent_id"],
        ["id"],
        ondelete="SET NULL",
    )
    op.create_check_constraint(op.f("ck_tasks_not_its_own_parent"), "tasks", "parent_id <> id")
    for name, columns, where in TASK_INDEXES:
        op.create_index(name, "tasks", columns, unique=False, postgresql_where=sa.text(where))


def downgrade() -> None:
    for name, _, _ in reversed(TASK_INDEXES):
        op.drop_index(name, table_name="tasks")
    op.drop_constraint(op.f("ck_tasks_not_its_own_parent"), "tasks", type_="check")
    op.drop_constraint(op.f("fk_tasks_parent_id_tasks"), "tasks", type_="foreignkey")
    op.drop_column("tasks", "parent_id")
    op.drop_index("ix_change_feed_tombstones", table_name="change_feed")
    op.drop_index("uq_change_feed_user_seq", table_name="change_feed")
    op.drop_table("change_feed")
    op.drop_table("change_counters")
