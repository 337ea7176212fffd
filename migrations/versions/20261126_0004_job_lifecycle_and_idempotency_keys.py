"""Outbox rows live until their job finished; mail intents; idempotency keys in PostgreSQL.

`outbox_jobs`: `due_at` (when the relay publishes the row again if it still exists),
`retries` and `publish_count`; the relay reads `due_at` through its index. `sent_emails`
records the intent (Message-ID, attempt time) before the SMTP hand-off, `sent_at` once SMTP
accepted. `idempotency_keys` holds the first response of a create per (user, key), written in
the create's own transaction.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26 08:00:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "outbox_jobs",
        sa.Column(
            "due_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
    )
    op.add_column("outbox_jobs", sa.Column("retries", sa.Integer(), server_default="0", nullable=False))
    op.add_column(
        "outbox_jobs", sa.Column("publish_count", sa.Integer(), server_default="0", nullable=False)
    )
    op.drop_index("ix_outbox_jobs_created_at", table_name="outbox_jobs")
    op.create_index(op.f("ix_outbox_jobs_due_at"), "outbox_jobs", ["due_at"], unique=False)

    # Existing records were sent: their intent time is their send time.
    op.add_column("sent_emails", sa.Column("message_id", sa.String(length=250), server_default="", nullable=False))
    op.alter_column("sent_emails", "message_id", server_default=None)
    op.add_column("sent_emails", sa.Column("attempts", sa.Integer(), server_default="1", nullable=False))
    op.add_column(
        "sent_emails",
        sa.Column(
            "attempted_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
    )
    op.execute("UPDATE sent_emails SET attempted_at = sent_at")
    op.alter_column("sent_emails", "sent_at", nullable=True)
    op.drop_index("ix_sent_emails_sent_at", table_name="sent_emails")
    op.create_index(op.f("ix_sent_emails_attempted_at"), "sent_emails", ["attempted_at"], unique=False)

    op.create_table(
        "idempotency_keys",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("key_digest", sa.String(length=64), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("headers", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_idempotency_keys_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_id", "key_digest", name=op.f("pk_idempotency_keys")),
    )
    op.create_index(
        op.f("ix_idempotency_keys_created_at"), "idempotency_keys", ["created_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_idempotency_keys_created_at"), table_name="idempotency_keys")
    op.drop_table("idempotency_keys")

    op.drop_index(op.f("ix_sent_emails_attempted_at"), table_name="sent_emails")
    op.execute("DELETE FROM sent_emails WHERE sent_at IS NULL")
    op.alter_column("sent_emails", "sent_at", nullable=False)
    op.create_index("ix_sent_emails_sent_at", "sent_emails", ["sent_at"], unique=False)
    op.drop_column("sent_emails", "attempted_at")
    op.drop_column("sent_emails", "attempts")
    op.drop_column("sent_emails", "message_id")

    op.drop_index(op.f("ix_outbox_jobs_due_at"), table_name="outbox_jobs")
    op.create_index("ix_outbox_jobs_created_at", "outbox_jobs", ["created_at"], unique=False)
    op.drop_column("outbox_jobs", "publish_count")
    op.drop_column("outbox_jobs", "retries")
    op.drop_column("outbox_jobs", "due_at")
