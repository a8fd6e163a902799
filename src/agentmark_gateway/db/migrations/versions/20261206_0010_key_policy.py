"""apps.key_max_lifetime_days and apps.key_expiry_required: an app's key hygiene policy

Revision ID: 20261206_0010
Revises: 20261206_0007
Create Date: 2026-12-06 22:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "20261206_0010"
down_revision: str | None = "20261206_0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Plain ADD COLUMNs on both databases: one nullable, one with a constant default.
    op.add_column("apps", sa.Column("key_max_lifetime_days", sa.Integer(), nullable=True))
    op.add_column(
        "apps",
        sa.Column("key_expiry_required", sa.Boolean(), server_default=sa.false(), nullable=False),
    )


def downgrade() -> None:
    op.execute("ALTER TABLE apps DROP COLUMN key_expiry_required")
    op.execute("ALTER TABLE apps DROP COLUMN key_max_lifetime_days")
