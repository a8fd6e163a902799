"""indexes for the dashboard's trace filters: the shown name, and the status

The traces list is newest first, LIMIT 50, within one app. A filter on a name
or a status that few traces have (or none: a typo) otherwise walked every trace
of the app in time order: a second for 100,000 traces. With the filter's column
before the start time, each filter reads only its own traces, already in order.
The name is the one the list shows, coalesce(trace_name, root_name, first_name),
indexed as that expression (traces/rollup.py, trace_name()).

Revision ID: 20261206_0009
Revises: 20261206_0011
Create Date: 2026-12-06 23:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "20261206_0009"
down_revision: str | None = "20261206_0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NAME = sa.text("coalesce(trace_name, root_name, first_name)")


def upgrade() -> None:
    # PostgreSQL only (models.py says why); SQLite gets the status index.
    if op.get_bind().dialect.name == "postgresql":
        op.create_index("ix_traces_app_id_name", "traces", ["app_id", NAME, "start_time_ns"])
    op.create_index(
        "ix_traces_app_id_status_code", "traces", ["app_id", "status_code", "start_time_ns"]
    )


def downgrade() -> None:
    op.drop_index("ix_traces_app_id_status_code", table_name="traces")
    if op.get_bind().dialect.name == "postgresql":
        op.drop_index("ix_traces_app_id_name", table_name="traces")
