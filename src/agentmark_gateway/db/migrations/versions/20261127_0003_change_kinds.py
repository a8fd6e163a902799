"""key_changes also announces template changes; indexed by time for polling and pruning

Revision ID: 20261127_0003
Revises: 20261127_0002
Create Date: 2026-11-27 13:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "20261127_0003"
down_revision: str | None = "20261127_0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("key_changes", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("kind", sa.String(length=16), server_default="keys", nullable=False)
        )
        batch_op.create_index(batch_op.f("ix_key_changes_created_at"), ["created_at"])


def downgrade() -> None:
    with op.batch_alter_table("key_changes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_key_changes_created_at"))
        batch_op.drop_column("kind")
