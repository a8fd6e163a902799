"""drop api_keys.extra: nothing ever wrote or read it

Revision ID: 20261206_0006
Revises: 20261206_0005
Create Date: 2026-12-06 21:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "20261206_0006"
down_revision: str | None = "20261206_0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON_TYPE = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    # A plain DROP COLUMN on both databases (SQLite has it since 3.35): the column
    # has no index or constraint, so the table need not be rebuilt.
    op.execute("ALTER TABLE api_keys DROP COLUMN extra")


def downgrade() -> None:
    op.add_column("api_keys", sa.Column("extra", JSON_TYPE, nullable=True))
