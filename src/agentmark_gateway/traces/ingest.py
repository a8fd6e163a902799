"""Storing a batch of spans: one transaction, idempotent, trace roll-ups kept current.

A span already stored (same app, trace and span id) is skipped, and only the
spans this batch really added are counted into their trace's roll-up, so a
re-sent batch changes nothing. Rows are written in key order: two batches that
touch the same spans or traces take their locks in the same order and cannot
deadlock on PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any, cast

from sqlalchemy import Table, case, func
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from agentmark_gateway.db.base import utcnow
from agentmark_gateway.metrics.pricing import PriceTable
from agentmark_gateway.traces import derive
from agentmark_gateway.traces.models import Span, Trace, TraceTag
from agentmark_gateway.traces.otlp import OtlpSpan

SPANS = cast(Table, Span.__table__)
TRACES = cast(Table, Trace.__table__)
TRACE_TAGS = cast(Table, TraceTag.__table__)
# Span fields whose first value is the trace's (the SDK sets them on the root span).
_FROM_SPANS = ("trace_name", "model", "user_id", "session_id", "session_name", "dataset_run_id")
_FIRST_SEEN = ("root_name", *_FROM_SPANS)


@dataclass(frozen=True)
class _Statements:
    spans: Any
    traces: Any
    tags: Any


@lru_cache(maxsize=4)
def _statements(dialect: str) -> _Statements:
    """The three writes of an ingest, built once per dialect (they are immutable)."""
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    spans = (
        insert(SPANS)
        .on_conflict_do_nothing(index_elements=["app_id", "trace_id", "span_id"])
        .returning(SPANS.c.trace_id, SPANS.c.span_id)
    )
    traces = insert(TRACES)
    new = traces.excluded
    old = TRACES.c
    # SQLite's two-argument min/max are PostgreSQL's least/greatest.
    least, greatest = (
        (func.least, func.greatest) if dialect == "postgresql" else (func.min, func.max)
    )
    traces = traces.on_conflict_do_update(
        index_elements=["app_id", "trace_id"],
        set_={
            "start_time_ns": least(old.start_time_ns, new.start_time_ns),
            "end_time_ns": greatest(old.end_time_ns, new.end_time_ns),
            "first_name": case(
                (new.start_time_ns < old.start_time_ns, new.first_name), else_=old.first_name
            ),
            "span_count": old.span_count + new.span_count,
            "status_code": greatest(old.status_code, new.status_code),
            "input_tokens": old.input_tokens + new.input_tokens,
            "output_tokens": old.output_tokens + new.output_tokens,
            "cost": old.cost + new.cost,
            **{name: func.coalesce(old[name], new[name]) for name in _FIRST_SEEN},
            "updated_at": new.updated_at,
        },
    )
    return _Statements(spans, traces, insert(TRACE_TAGS).on_conflict_do_nothing())


async def store_spans(
    session: AsyncSession, *, app_id: str, spans: Sequence[OtlpSpan], prices: PriceTable
) -> int:
    """Stores every span and its trace's roll-up, then commits; returns the spans received."""
    if not spans:
        return 0
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for span in spans:
        key = (span.trace_id, span.span_id)
        if key not in rows:
            rows[key] = derive.row_of(span, app_id=app_id, prices=prices)
    received_at = utcnow()
    ordered = [rows[key] for key in sorted(rows)]
    for row in ordered:
        row["received_at"] = received_at

    statements = _statements(session.get_bind().dialect.name)
    added = {(r.trace_id, r.span_id) for r in await session.execute(statements.spans, ordered)}
    new_rows = [row for row in ordered if (row["trace_id"], row["span_id"]) in added]
    if new_rows:
        traces, tags = _rollups(app_id, new_rows, received_at)
        await session.execute(statements.traces, traces)
        if tags:
            await session.execute(statements.tags, tags)
    await session.commit()
    return len(spans)


def _rollups(
    app_id: str, rows: list[dict[str, Any]], now: datetime
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Per-trace sums of the new rows, and the (trace, tag) pairs they carry."""
    traces: dict[str, dict[str, Any]] = {}
    tags: set[tuple[str, str]] = set()
    for row in rows:
        trace_id = row["trace_id"]
        trace = traces.get(trace_id)
        if trace is None:
            trace = traces[trace_id] = {
                "app_id": app_id,
                "trace_id": trace_id,
                "first_name": row["name"],
                "start_time_ns": row["start_time_ns"],
                "end_time_ns": row["end_time_ns"],
                "span_count": 0,
                "status_code": 0,
                "input_tokens": 0,
                "output_tokens": 0,
                "cost": 0.0,
                "updated_at": now,
                **dict.fromkeys(_FIRST_SEEN),
            }
        if row["start_time_ns"] < trace["start_time_ns"]:
            trace["start_time_ns"] = row["start_time_ns"]
            trace["first_name"] = row["name"]
        trace["end_time_ns"] = max(trace["end_time_ns"], row["end_time_ns"])
        trace["span_count"] += 1
        trace["status_code"] = max(trace["status_code"], row["status_code"])
        trace["input_tokens"] += row["input_tokens"]
        trace["output_tokens"] += row["output_tokens"]
        trace["cost"] += row["cost"] or 0.0
        if trace["root_name"] is None and row["parent_span_id"] is None:
            trace["root_name"] = row["name"]
        for name in _FROM_SPANS:
            if trace[name] is None:
                trace[name] = row[name]
        tags.update((trace_id, tag) for tag in row["tags"])
    tag_rows = [
        {"app_id": app_id, "trace_id": trace_id, "tag": tag} for trace_id, tag in sorted(tags)
    ]
    return [traces[t] for t in sorted(traces)], tag_rows
