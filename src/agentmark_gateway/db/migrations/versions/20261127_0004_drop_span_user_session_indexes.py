"""drop the spans indexes on user and session: every such filter goes through traces

Span queries by user or session select the trace ids from the traces roll-up
(indexed there) and then spans by trace; these two indexes were only written,
on every ingested span, and never read.

Revision ID: 20261127_0004
Revises: 20261127_0003
Create Date: 2026-11-27 14:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "20261127_0004"
down_revision: str | None = "20261127_0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("spans", schema=None) as batch_op:
        batch_op.drop_index("ix_spans_app_id_session_id")
        batch_op.drop_index("ix_spans_app_id_user_id")


def downgrade() -> None:
    with op.batch_alter_table("spans", schema=None) as batch_op:
        batch_op.create_index("ix_spans_app_id_user_id", ["app_id", "user_id"], unique=False)
        batch_op.create_index("ix_spans_app_id_session_id", ["app_id", "session_id"], unique=False)
