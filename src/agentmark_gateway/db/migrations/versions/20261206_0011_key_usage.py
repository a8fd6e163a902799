"""key_usage: each key's requests by outcome and permission, per minute and hour

Revision ID: 20261206_0011
Revises: 20261206_0010
Create Date: 2026-12-06 21:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "20261206_0011"
down_revision: str | None = "20261206_0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON_TYPE = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "key_usage",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("app_id", sa.String(length=40), nullable=False),
        sa.Column("key_id", sa.String(length=40), nullable=False),
        sa.Column("granularity", sa.String(length=8), nullable=False),
        sa.Column("bucket_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ok", sa.Integer(), nullable=False),
        sa.Column("client_error", sa.Integer(), nullable=False),
        sa.Column("unauthorized", sa.Integer(), nullable=False),
        sa.Column("forbidden", sa.Integer(), nullable=False),
        sa.Column("rate_limited", sa.Integer(), nullable=False),
        sa.Column("server_error", sa.Integer(), nullable=False),
        sa.Column("spans", sa.Integer(), nullable=False),
        sa.Column("scores", sa.Integer(), nullable=False),
        sa.Column("permission_sets", JSON_TYPE, nullable=False),
        sa.Column("refused", JSON_TYPE, nullable=False),
        sa.Column("last_client_address", sa.String(length=64), nullable=True),
        sa.Column("last_user_agent", sa.String(length=200), nullable=True),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_key_usage")),
    )
    op.create_index(
        "ix_key_usage_key_bucket", "key_usage", ["key_id", "granularity", "bucket_start"]
    )
    op.create_index(
        "ix_key_usage_app_bucket", "key_usage", ["app_id", "granularity", "bucket_start"]
    )


def downgrade() -> None:
    op.drop_index("ix_key_usage_app_bucket", table_name="key_usage")
    op.drop_index("ix_key_usage_key_bucket", table_name="key_usage")
    op.drop_table("key_usage")
