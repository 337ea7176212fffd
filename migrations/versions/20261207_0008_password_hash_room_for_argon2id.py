"""Room for Argon2id password hashes.

An Argon2id hash in its encoded form (`$argon2id$v=19$m=...,t=...,p=1$salt$hash`) is about 97
characters at the default cost and grows with it; bcrypt's were 60. Widening a varchar is a
change of the catalogue only in PostgreSQL: no table rewrite, no long lock.

Rolling the code back past this revision is not safe once anyone has signed in: their hash is
Argon2id, which the code before it cannot read (bcrypt refuses it, a 500 at their sign-in).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07 23:50:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.alter_column(
        "users",
        "password_hash",
        type_=sa.String(length=255),
        existing_type=sa.String(length=100),
        existing_nullable=False,
    )


def downgrade() -> None:
    op.alter_column(
        "users",
        "password_hash",
        type_=sa.String(length=100),
        existing_type=sa.String(length=255),
        existing_nullable=False,
    )
