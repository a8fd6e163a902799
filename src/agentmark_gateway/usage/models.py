"""Usage counts per key, as each process writes them: one row per key, bucket and flush.

Rows are deltas: a process adds a row for what it counted since its last flush,
never updates one, so processes never contend and a read adds the rows up.
Minute rows are kept 48 hours, then folded into hour rows (``rollup.py``),
which are kept 90 days.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from agentmark_gateway.db.base import Base, JSONType, UTCDateTime

MINUTE = "minute"
HOUR = "hour"


class KeyUsage(Base):
    __tablename__ = "key_usage"
    __table_args__ = (
        Index("ix_key_usage_key_bucket", "key_id", "granularity", "bucket_start"),
        Index("ix_key_usage_app_bucket", "app_id", "granularity", "bucket_start"),
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
    )
    # Not foreign keys: counts outlive a deleted key (the app's usage still adds up),
    # and an app's deletion removes them in apps/service.py.
    app_id: Mapped[str] = mapped_column(String(40))
    key_id: Mapped[str] = mapped_column(String(40))
    granularity: Mapped[str] = mapped_column(String(8))
    bucket_start: Mapped[datetime] = mapped_column(UTCDateTime)
    # Requests by outcome.
    ok: Mapped[int] = mapped_column(Integer, default=0)  # 1xx-3xx
    client_error: Mapped[int] = mapped_column(Integer, default=0)  # 4xx but the three below
    unauthorized: Mapped[int] = mapped_column(Integer, default=0)  # 401 of a known key
    forbidden: Mapped[int] = mapped_column(Integer, default=0)  # 403: a permission missing
    rate_limited: Mapped[int] = mapped_column(Integer, default=0)  # 429
    server_error: Mapped[int] = mapped_column(Integer, default=0)  # 5xx
    spans: Mapped[int] = mapped_column(Integer, default=0)
    scores: Mapped[int] = mapped_column(Integer, default=0)
    # Admitted requests by the permissions their route required, as "a b" (sorted, one
    # space): what a narrower set would have refused is read from these.
    permission_sets: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    # 403s by the permission that was missing.
    refused: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    last_client_address: Mapped[str | None] = mapped_column(String(64), nullable=True)
    last_user_agent: Mapped[str | None] = mapped_column(String(200), nullable=True)
    last_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
