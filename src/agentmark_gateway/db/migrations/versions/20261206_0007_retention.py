"""apps.retention_days: how long an app's traces are kept (null: the gateway's default)

Revision ID: 20261206_0007
Revises: 20261206_0006
Create Date: 2026-12-06 22:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "20261206_0007"
down_revision: str | None = "20261206_0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A nullable column without a default: a plain ADD COLUMN on both databases.
    op.add_column("apps", sa.Column("retention_days", sa.Integer(), nullable=True))


def downgrade() -> None:
    op.execute("ALTER TABLE apps DROP COLUMN retention_days")
