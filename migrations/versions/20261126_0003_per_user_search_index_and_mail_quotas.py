"""Per-user search index and mail quotas.

`ix_tasks_user_search` replaces `ix_tasks_search_trgm`: a GIN index on `(user_id, <search
document> gin_trgm_ops)` (btree_gin supplies the GIN operator class for uuid), so a search
reads only the caller's matches instead of every tenant's and then throwing away all but the
caller's. Built CONCURRENTLY, outside the migration's transaction, so writes to `tasks` go on
while it builds; the old index is dropped only once the new one exists.

`mail_quotas`: per address, the mails sent today (of them, links) and the reminder digests
sent this hour (`common.security.mail_quota`).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 09:00:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SEARCH_DOCUMENT = "(lower(title || ' ' || coalesce(description, ''))) gin_trgm_ops"


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS btree_gin")
    op.create_table(
        "mail_quotas",
        sa.Column("address", sa.String(length=320), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("mails_today", sa.Integer(), nullable=False),
        sa.Column("links_today", sa.Integer(), nullable=False),
        sa.Column("hour", sa.DateTime(timezone=True), nullable=False),
        sa.Column("digests_this_hour", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("address", name=op.f("pk_mail_quotas")),
    )
    with op.get_context().autocommit_block():
        op.create_index(
            "ix_tasks_user_search",
            "tasks",
            ["user_id", sa.literal_column(SEARCH_DOCUMENT)],
            unique=False,
            postgresql_using="gin",
            postgresql_where=sa.text("deleted_at IS NULL"),
            postgresql_concurrently=True,
            if_not_exists=True,
        )
        op.drop_index(
            "ix_tasks_search_trgm",
            table_name="tasks",
            postgresql_concurrently=True,
            if_exists=True,
        )


def downgrade() -> None:
    with op.get_context().autocommit_block():
        op.create_index(
            "ix_tasks_search_trgm",
            "tasks",
            [sa.literal_column(SEARCH_DOCUMENT)],
            unique=False,
            postgresql_using="gin",
            postgresql_where=sa.text("deleted_at IS NULL"),
            postgresql_concurrently=True,
            if_not_exists=True,
        )
        op.drop_index(
            "ix_tasks_user_search",
            table_name="tasks",
            postgresql_concurrently=True,
            if_exists=True,
        )
    op.drop_table("mail_quotas")
    op.execute("DROP EXTENSION IF EXISTS btree_gin")
