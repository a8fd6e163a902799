"""the key that sent a trace

traces.api_key_id: the key whose request stored the trace's first spans, set at
ingest. Traces stored before stay NULL (the dashboard shows no key for them).
Indexed as the other list filters (20261206_0009): the app, the key, then the
start time, so the newest-first list of one key reads only that key's traces.

Revision ID: 20261206_0012
Revises: 20261206_0009
Create Date: 2026-12-06 23:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "20261206_0012"
down_revision: str | None = "20261206_0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Nullable, no default: PostgreSQL and SQLite add it without rewriting the table.
    op.add_column("traces", sa.Column("api_key_id", sa.String(length=40), nullable=True))
    op.create_index(
        "ix_traces_app_id_api_key_id", "traces", ["app_id", "api_key_id", "start_time_ns"]
    )


def downgrade() -> None:
    op.drop_index("ix_traces_app_id_api_key_id", table_name="traces")
    # A plain DROP COLUMN on both databases (SQLite has it since 3.35), as in 0006.
    op.execute("ALTER TABLE traces DROP COLUMN api_key_id")
