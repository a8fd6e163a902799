from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from agentmark_gateway.db.base import Base, JSONType, UTCDateTime, utcnow

# 64-bit ids on PostgreSQL; SQLite only autoincrements an INTEGER PRIMARY KEY.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class Span(Base):
    """One OpenTelemetry span, as received, plus the fields queries filter on."""

    __tablename__ = "spans"
    __table_args__ = (
        UniqueConstraint("app_id", "trace_id", "span_id"),
        Index("ix_spans_app_id_start_time_ns", "app_id", "start_time_ns"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    app_id: Mapped[str] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"))
    trace_id: Mapped[str] = mapped_column(String(32))
    span_id: Mapped[str] = mapped_column(String(16))
    parent_span_id: Mapped[str | None] = mapped_column(String(16), nullable=True)
    name: Mapped[str] = mapped_column(Text)
    kind: Mapped[int] = mapped_column(Integer, default=0)
    start_time_ns: Mapped[int] = mapped_column(BigInteger)
    end_time_ns: Mapped[int] = mapped_column(BigInteger)
    duration_ms: Mapped[float] = mapped_column(Float, default=0.0)
    status_code: Mapped[int] = mapped_column(Integer, default=0)  # 0 unset, 1 ok, 2 error
    status_message: Mapped[str | None] = mapped_column(Text, nullable=True)
    attributes: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    resource_attributes: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    events: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    links: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    scope_name: Mapped[str | None] = mapped_column(String(255), nullable=True)
    # Derived from agentmark.* and gen_ai.* attributes at ingest, for filters.
    trace_name: Mapped[str | None] = mapped_column(Text, nullable=True)
    session_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    session_name: Mapped[str | None] = mapped_column(Text, nullable=True)
    user_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    tags: Mapped[list[str]] = mapped_column(JSONType, default=list)
    span_type: Mapped[str | None] = mapped_column(String(64), nullable=True)
    model: Mapped[str | None] = mapped_column(String(255), nullable=True)
    input_tokens: Mapped[int] = mapped_column(Integer, default=0)
    output_tokens: Mapped[int] = mapped_column(Integer, default=0)
    cost: Mapped[float | None] = mapped_column(Float, nullable=True)
    dataset_run_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    prompt_name: Mapped[str | None] = mapped_column(Text, nullable=True)
    input: Mapped[str | None] = mapped_column(Text, nullable=True)
    output: Mapped[str | None] = mapped_column(Text, nullable=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Trace(Base):
    """A trace's spans rolled up, kept current at ingest: lists, sessions and metrics read it.

    Only newly stored spans are added in, so a re-sent batch changes nothing.
    """

    __tablename__ = "traces"
    __table_args__ = (
        Index("ix_traces_app_id_start_time_ns", "app_id", "start_time_ns"),
        Index("ix_traces_app_id_session_id", "app_id", "session_id"),
        Index("ix_traces_app_id_user_id", "app_id", "user_id"),
        Index("ix_traces_app_id_dataset_run_id", "app_id", "dataset_run_id"),
        Index("ix_traces_app_id_experiment_key", "app_id", "experiment_key"),
        # The dashboard's name and status filters, newest first (migration 20261206_0009);
        # the expression is rollup.trace_name(), the name the list shows. PostgreSQL
        # only: SQLite cannot reflect an expression index, and serves smaller apps.
        Index(
            "ix_traces_app_id_name",
            "app_id",
            text("coalesce(trace_name, root_name, first_name)"),
            "start_time_ns",
        ).ddl_if(dialect="postgresql"),
        Index("ix_traces_app_id_status_code", "app_id", "status_code", "start_time_ns"),
        # The key filter, newest first, as the two above (migration 20261206_0012).
        Index("ix_traces_app_id_api_key_id", "app_id", "api_key_id", "start_time_ns"),
    )

    app_id: Mapped[str] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"), primary_key=True)
    trace_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    # The name shown: trace_name (agentmark.trace_name), else the root span's, else the first's.
    trace_name: Mapped[str | None] = mapped_column(Text, nullable=True)
    root_name: Mapped[str | None] = mapped_column(Text, nullable=True)
    first_name: Mapped[str] = mapped_column(Text)
    start_time_ns: Mapped[int] = mapped_column(BigInteger)
    end_time_ns: Mapped[int] = mapped_column(BigInteger)
    span_count: Mapped[int] = mapped_column(Integer)
    status_code: Mapped[int] = mapped_column(Integer)  # the highest: any error makes it 2
    input_tokens: Mapped[int] = mapped_column(BigInteger)
    output_tokens: Mapped[int] = mapped_column(BigInteger)
    cost: Mapped[float] = mapped_column(Float)
    model: Mapped[str | None] = mapped_column(String(255), nullable=True)
    user_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    session_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    session_name: Mapped[str | None] = mapped_column(Text, nullable=True)
    dataset_run_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    # The rest of a dataset run's marks (agentmark.dataset_run_name, ...): a trace is
    # one row of a run, so experiments read their runs from here (experiments/).
    dataset_run_name: Mapped[str | None] = mapped_column(Text, nullable=True)
    dataset_path: Mapped[str | None] = mapped_column(Text, nullable=True)
    experiment_key: Mapped[str | None] = mapped_column(String(255), nullable=True)
    tree_hash: Mapped[str | None] = mapped_column(String(255), nullable=True)
    commit_sha: Mapped[str | None] = mapped_column(String(255), nullable=True)
    prompt_name: Mapped[str | None] = mapped_column(Text, nullable=True)
    # The key that sent the trace's first spans; no foreign key: a deleted key's traces
    # still name it. None for traces stored before keys were recorded.
    api_key_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    # When the trace's first spans were stored (a run's createdAt, as upstream counts it).
    received_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class TraceTag(Base):
    """One tag of a trace (``agentmark.tags``): a row each, so the tag filter is plain SQL."""

    __tablename__ = "trace_tags"
    # trace_id in the index too: the tag filter's join is then index-only, whatever
    # the planner's statistics say.
    __table_args__ = (Index("ix_trace_tags_app_id_tag_trace_id", "app_id", "tag", "trace_id"),)

    app_id: Mapped[str] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"), primary_key=True)
    trace_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tag: Mapped[str] = mapped_column(String(255), primary_key=True)
