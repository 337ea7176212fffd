"""Accounts people control: activity, personal access tokens, exports, deletion, sessions.

`account_events` (the activity log), `personal_access_tokens` (SHA-256 of the secret only),
`account_exports` (the archive in PostgreSQL, `STORAGE EXTERNAL` so a download reads it slice
by slice; at most one unfinished export per user), the session's network, user agent and last
use on `refresh_token_families`, the address and session of an address change on
`action_tokens` (and two new purposes), and a pending deletion on `users`. Every new table's
`user_id` cascades with its user: the erasure deletes the user row last.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26 00:55:36.679251+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0006'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('account_events',
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('kind', sa.Enum('login', 'login_failed', 'lockout', 'password_changed', 'password_reset', 'email_change_requested', 'email_changed', 'session_ended', 'token_created', 'token_revoked', 'export_requested', 'export_downloaded', 'deletion_requested', 'deletion_cancelled', name='activity_kind', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('ip_network', sa.String(length=50), nullable=True),
    sa.Column('user_agent', sa.String(length=256), nullable=True),
    sa.Column('detail', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_account_events_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_account_events'))
    )
    op.create_index(op.f('ix_account_events_created_at'), 'account_events', ['created_at'], unique=False)
    op.create_index(op.f('ix_account_events_user_id_created_at'), 'account_events', ['user_id', 'created_at'], unique=False)
    op.create_table('account_exports',
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('status', sa.Enum('pending', 'running', 'ready', 'failed', name='export_status', native_enum=False, create_constraint=True, length=16), server_default='pending', nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('size_bytes', sa.Integer(), nullable=True),
    sa.Column('failure', sa.String(length=200), nullable=True),
    sa.Column('archive', sa.LargeBinary(), nullable=True),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_account_exports_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_account_exports'))
    )
    op.create_index(op.f('ix_account_exports_expires_at'), 'account_exports', ['expires_at'], unique=False)
    op.create_index(op.f('ix_account_exports_user_id_created_at'), 'account_exports', ['user_id', 'created_at'], unique=False)
    op.create_index('uq_account_exports_one_unfinished', 'account_exports', ['user_id'], unique=True, postgresql_where=sa.text("status IN ('pending', 'running')"))
    op.create_table('personal_access_tokens',
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('scopes', postgresql.ARRAY(sa.String(length=32)), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_used_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_personal_access_tokens_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_personal_access_tokens')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_personal_access_tokens_token_hash'))
    )
    op.create_index(op.f('ix_personal_access_tokens_expires_at'), 'personal_access_tokens', ['expires_at'], unique=False)
    op.create_index(op.f('ix_personal_access_tokens_user_id_created_at'), 'personal_access_tokens', ['user_id', 'created_at'], unique=False)
    op.add_column('action_tokens', sa.Column('new_email', sa.String(length=320), nullable=True))
    op.add_column('action_tokens', sa.Column('session_id', sa.Uuid(), nullable=True))
    op.add_column('refresh_token_families', sa.Column('last_used_at', sa.DateTime(timezone=True), nullable=True))
    op.add_column('refresh_token_families', sa.Column('ip_network', sa.String(length=50), nullable=True))
    op.add_column('refresh_token_families', sa.Column('user_agent', sa.String(length=256), nullable=True))
    op.add_column('users', sa.Column('deletion_requested_at', sa.DateTime(timezone=True), nullable=True))
    op.add_column('users', sa.Column('erase_after', sa.DateTime(timezone=True), nullable=True))
    op.create_index('ix_users_erase_after', 'users', ['erase_after'], unique=False, postgresql_where=sa.text('erase_after IS NOT NULL'))
    op.execute("ALTER TABLE account_exports ALTER COLUMN archive SET STORAGE EXTERNAL")
    _purposes(PURPOSES + NEW_PURPOSES)


def downgrade() -> None:
    op.execute(
        "DELETE FROM action_tokens WHERE purpose IN ("
        + ", ".join(f"'{purpose}'" for purpose in NEW_PURPOSES)
        + ")"
    )
    _purposes(PURPOSES)
    op.drop_index('ix_users_erase_after', table_name='users', postgresql_where=sa.text('erase_after IS NOT NULL'))
    op.drop_column('users', 'erase_after')
    op.drop_column('users', 'deletion_requested_at')
    op.drop_column('refresh_token_families', 'user_agent')
    op.drop_column('refresh_token_families', 'ip_network')
    op.drop_column('refresh_token_families', 'last_used_at')
    op.drop_column('action_tokens', 'session_id')
    op.drop_column('action_tokens', 'new_email')
    op.drop_index(op.f('ix_personal_access_tokens_user_id_created_at'), table_name='personal_access_tokens')
    op.drop_index(op.f('ix_personal_access_tokens_expires_at'), table_name='personal_access_tokens')
    op.drop_table('personal_access_tokens')
    op.drop_index('uq_account_exports_one_unfinished', table_name='account_exports', postgresql_where=sa.text("status IN ('pending', 'running')"))
    op.drop_index(op.f('ix_account_exports_user_id_created_at'), table_name='account_exports')
    op.drop_index(op.f('ix_account_exports_expires_at'), table_name='account_exports')
    op.drop_table('account_exports')
    op.drop_index(op.f('ix_account_events_user_id_created_at'), table_name='account_events')
    op.drop_index(op.f('ix_account_events_created_at'), table_name='account_events')
    op.drop_table('account_events')


PURPOSES = ("verify_email", "reset_password")
NEW_PURPOSES = ("change_email", "restore_account")


def _purposes(allowed: tuple[str, ...]) -> None:
    """The CHECK constraint of the `purpose` column (a non-native enum) with these values."""
    name = "ck_action_tokens_action_token_purpose"
    op.drop_constraint(op.f(name), "action_tokens", type_="check")
    values = ", ".join(f"'{purpose}'" for purpose in allowed)
    op.create_check_constraint(op.f(name), "action_tokens", f"purpose IN ({values})")
