"""Recurring tasks and webhooks (#17).

`tasks` gains its series (the canonical rule, its start and zone) and the occurrence whose
completion created it, unique, so an occurrence has one next occurrence however often it is
completed. `webhook_endpoints`, `webhook_deliveries` (one event owed to one endpoint, its exact
body) and `webhook_attempts` (the deliveries log) belong to a user and go with the account.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26 09:00:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('webhook_endpoints',
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('url', sa.String(length=2048), nullable=False),
    sa.Column('description', sa.String(length=200), nullable=True),
    sa.Column('events', postgresql.ARRAY(sa.String(length=40)), nullable=False),
    sa.Column('secret', sa.String(length=100), nullable=False),
    sa.Column('previous_secret', sa.String(length=100), nullable=True),
    sa.Column('previous_secret_expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('failing_since', sa.DateTime(timezone=True), nullable=True),
    sa.Column('disabled_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('disabled_reason', sa.String(length=500), nullable=True),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_webhook_endpoints_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_webhook_endpoints'))
    )
    op.create_index(op.f('ix_webhook_endpoints_user_id_created_at_id'), 'webhook_endpoints', ['user_id', 'created_at', 'id'], unique=False)
    op.create_table('webhook_deliveries',
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('endpoint_id', sa.Uuid(), nullable=False),
    sa.Column('event', sa.String(length=40), nullable=False),
    sa.Column('payload', sa.Text(), nullable=False),
    sa.Column('status', sa.Enum('pending', 'delivered', 'failed', name='webhook_delivery_status', native_enum=False, create_constraint=True, length=20), server_default='pending', nullable=False),
    sa.Column('attempts', sa.Integer(), server_default=sa.text('0'), nullable=False),
    sa.Column('round', sa.Integer(), server_default=sa.text('1'), nullable=False),
    sa.Column('retry_until', sa.DateTime(timezone=True), nullable=False),
    sa.Column('not_before', sa.DateTime(timezone=True), nullable=True),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['endpoint_id'], ['webhook_endpoints.id'], name=op.f('fk_webhook_deliveries_endpoint_id_webhook_endpoints'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_webhook_deliveries_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_webhook_deliveries'))
    )
    op.create_index(op.f('ix_webhook_deliveries_created_at'), 'webhook_deliveries', ['created_at'], unique=False)
    op.create_index(op.f('ix_webhook_deliveries_user_id_endpoint_id_created_at_id'), 'webhook_deliveries', ['user_id', 'endpoint_id', 'created_at', 'id'], unique=False)
    op.create_table('webhook_attempts',
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('delivery_id', sa.Uuid(), nullable=False),
    sa.Column('attempted_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('outcome', sa.String(length=20), nullable=False),
    sa.Column('status_code', sa.Integer(), nullable=True),
    sa.Column('duration_ms', sa.Integer(), nullable=False),
    sa.Column('error', sa.String(length=500), nullable=True),
    sa.Column('response_body', sa.Text(), nullable=True),
    sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.ForeignKeyConstraint(['delivery_id'], ['webhook_deliveries.id'], name=op.f('fk_webhook_attempts_delivery_id_webhook_deliveries'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_webhook_attempts_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_webhook_attempts'))
    )
    op.create_index(op.f('ix_webhook_attempts_user_id_delivery_id_attempted_at'), 'webhook_attempts', ['user_id', 'delivery_id', 'attempted_at'], unique=False)
    op.add_column('tasks', sa.Column('recurrence', sa.String(length=255), nullable=True))
    op.add_column('tasks', sa.Column('recurrence_start', sa.DateTime(timezone=True), nullable=True))
    op.add_column('tasks', sa.Column('recurrence_zone', sa.String(length=64), nullable=True))
    op.add_column('tasks', sa.Column('previous_occurrence_id', sa.Uuid(), nullable=True))
    op.create_index('uq_tasks_previous_occurrence', 'tasks', ['previous_occurrence_id'], unique=True, postgresql_where=sa.text('previous_occurrence_id IS NOT NULL'))
    op.create_foreign_key(op.f('fk_tasks_previous_occurrence_id_tasks'), 'tasks', 'tasks', ['previous_occurrence_id'], ['id'], ondelete='SET NULL')
    op.create_check_constraint(
        op.f("ck_tasks_recurrence_complete"),
        "tasks",
        "recurrence IS NULL OR (due_date IS NOT NULL AND recurrence_start IS NOT NULL"
        " AND recurrence_zone IS NOT NULL)",
    )


def downgrade() -> None:
    op.drop_constraint(op.f("ck_tasks_recurrence_complete"), "tasks", type_="check")
    op.drop_constraint(op.f('fk_tasks_previous_occurrence_id_tasks'), 'tasks', type_='foreignkey')
    op.drop_index('uq_tasks_previous_occurrence', table_name='tasks', postgresql_where=sa.text('previous_occurrence_id IS NOT NULL'))
    op.drop_column('tasks', 'previous_occurrence_id')
    op.drop_column('tasks', 'recurrence_zone')
    op.drop_column('tasks', 'recurrence_start')
    op.drop_column('tasks', 'recurrence')
    op.drop_index(op.f('ix_webhook_attempts_user_id_delivery_id_attempted_at'), table_name='webhook_attempts')
    op.drop_table('webhook_attempts')
    op.drop_index(op.f('ix_webhook_deliveries_user_id_endpoint_id_created_at_id'), table_name='webhook_deliveries')
    op.drop_index(op.f('ix_webhook_deliveries_created_at'), table_name='webhook_deliveries')
    op.drop_table('webhook_deliveries')
    op.drop_index(op.f('ix_webhook_endpoints_user_id_created_at_id'), table_name='webhook_endpoints')
    op.drop_table('webhook_endpoints')
