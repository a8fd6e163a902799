"""Storing a batch of spans: one transaction, idempotent, trace roll-ups kept current.

A span already stored (same app, trace and span id) is skipped, and only the
spans this batch really added are counted into their trace's roll-up, so a
re-sent batch changes nothing. Rows are written in key order: two batches that
touch the same spans or traces take their locks in the same order and cannot
deadlock on PostgreSQL.

The span rows, the bulk of the work, go to the driver as one plain SQL statement
per batch (see ``_SpanInsert``): SQLAlchemy's per-row parameter handling and its
stdlib JSON encoding cost more CPU than parsing and deriving the spans together.
The statement still runs on the session's connection, in its transaction.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any, cast

import orjson
from sqlalchemy import Table, case, func
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from agentmark_gateway.db.base import utcnow
from agentmark_gateway.db.group_commit import GroupCommit
from agentmark_gateway.observability.metrics import SPANS_INGESTED
from agentmark_gateway.pricing import PriceTable
from agentmark_gateway.traces import derive
from agentmark_gateway.traces.models import Span, Trace, TraceTag
from agentmark_gateway.traces.otlp import OtlpSpan

SPANS = cast(Table, Span.__table__)
TRACES = cast(Table, Trace.__table__)
TRACE_TAGS = cast(Table, TraceTag.__table__)
# Span fields whose first value is the trace's (the SDK sets them on the root span).
_FROM_SPANS = (
    "trace_name",
    "model",
    "user_id",
    "session_id",
    "session_name",
    "dataset_run_id",
    "dataset_run_name",
    "dataset_path",
    "experiment_key",
    "tree_hash",
    "commit_sha",
    "prompt_name",
)
_FIRST_SEEN = ("root_name", *_FROM_SPANS)
# Same for every row of a batch (bound once on PostgreSQL, not once per row).
_BATCH_COLUMNS = ("app_id", "received_at")
# Every other column but the autoincremented id, in table order.
_ROW_COLUMNS = tuple(
    column.name for column in SPANS.columns if column.name not in ("id", *_BATCH_COLUMNS)
)
_JSON_COLUMNS = frozenset(("attributes", "resource_attributes", "events", "links", "tags"))
# SQLite allows 32,766 parameters a statement since 3.32, 999 before (still the system
# library of some LTS distributions); ~30 columns a row.
_SQLITE_ROWS_PER_STATEMENT = 500 if sqlite3.sqlite_version_info >= (3, 32) else 30


@dataclass(frozen=True)
class SpanBatch:
    """The rows of one request's spans, derived before the request waits to be written."""

    app_id: str
    # One row per (trace, span) id: the first of the request's copies.
    rows: dict[tuple[str, str], dict[str, Any]]
    # The key that sent them, recorded on each new trace (None: not sent with a key).
    api_key_id: str | None = None


def prepare_spans(
    *,
    app_id: str,
    spans: Sequence[OtlpSpan],
    prices: PriceTable,
    api_key_id: str | None = None,
) -> SpanBatch:
    """Derives the stored columns of each span (the CPU work, done in the request)."""
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for span in spans:
        key = (span.trace_id, span.span_id)
        if key not in rows:
            rows[key] = derive.row_of(span, app_id=app_id, prices=prices)
    return SpanBatch(app_id, rows, api_key_id)


async def write_span_batches(session: AsyncSession, batches: Sequence[SpanBatch]) -> None:
    """Stores the spans of several requests and their traces' roll-ups; does not commit.

    The batches of one app become one statement; a span in several batches is
    stored once, from the first. Apps go in id order and spans in key order, in
    every process, so concurrent transactions lock rows in the same order.
    """
    by_app: dict[str, dict[tuple[str, str], dict[str, Any]]] = {}
    # Per app, the key of each trace: that of the first batch holding one of its spans.
    senders: dict[str, dict[str, str | None]] = {}
    for batch in batches:
        rows = by_app.setdefault(batch.app_id, {})
        keys = senders.setdefault(batch.app_id, {})
        for trace_id, _span_id in batch.rows:
            keys.setdefault(trace_id, batch.api_key_id)
        if not rows:
            rows.update(batch.rows)
            continue
        for key, row in batch.rows.items():
            rows.setdefault(key, row)
    received_at = utcnow()
    for app_id in sorted(by_app):
        rows = by_app[app_id]
        if rows:
            ordered = [rows[key] for key in sorted(rows)]
            await _write_rows(session, app_id, ordered, received_at, senders[app_id])


async def store_spans(
    session: AsyncSession,
    *,
    app_id: str,
    spans: Sequence[OtlpSpan],
    prices: PriceTable,
    api_key_id: str | None = None,
) -> int:
    """Stores every span and its trace's roll-up, then commits; returns the spans received."""
    if not spans:
        return 0
    batch = prepare_spans(app_id=app_id, spans=spans, prices=prices, api_key_id=api_key_id)
    await write_span_batches(session, [batch])
    await session.commit()
    return len(spans)


async def write_spans(
    writes: GroupCommit,
    *,
    app_id: str,
    spans: Sequence[OtlpSpan],
    prices: PriceTable,
    api_key_id: str | None = None,
) -> int:
    """Stores the spans through the process's writer; returns the spans received.

    Returns once their transaction has committed (it may hold other requests' rows).
    """
    batch = prepare_spans(app_id=app_id, spans=spans, prices=prices, api_key_id=api_key_id)
    if batch.rows:
        await writes.write(write_span_batches, batch, len(batch.rows))
    SPANS_INGESTED.add(len(spans))
    return len(spans)


async def _write_rows(
    session: AsyncSession,
    app_id: str,
    ordered: list[dict[str, Any]],
    received_at: datetime,
    senders: dict[str, str | None],
) -> None:
    dialect = session.get_bind().dialect
    added = await _span_insert(dialect).run(session, app_id, received_at, ordered)
    new_rows = [row for row in ordered if (row["trace_id"], row["span_id"]) in added]
    if new_rows:
        statements = _statements(dialect.name)
        traces, tags = _rollups(app_id, new_rows, received_at, senders)
        await session.execute(statements.traces, traces)
        if tags:
            await session.execute(statements.tags, tags)


# --- the span rows ---------------------------------------------------------------------


@dataclass(frozen=True)
class _SpanInsert:
    """``INSERT INTO spans ... ON CONFLICT DO NOTHING RETURNING`` in the driver's own SQL.

    Values are converted as SQLAlchemy would (each column type's bind processor),
    except JSON, which is encoded with orjson: the same document, several times
    faster than the stdlib encoder SQLAlchemy uses.
    """

    dialect: Dialect
    # Index in a row tuple and the column type's bind processor, where it has one.
    processors: tuple[tuple[int, Callable[[Any], Any]], ...]
    received_at: Callable[[Any], Any]

    async def run(
        self,
        session: AsyncSession,
        app_id: str,
        received_at: datetime,
        rows: list[dict[str, Any]],
    ) -> set[tuple[str, str]]:
        """Inserts the rows; returns the (trace, span) ids that were not stored before."""
        values = [self.values(row) for row in rows]
        batch = (app_id, self.received_at(received_at))
        connection = await session.connection()
        if self.dialect.name == "postgresql":
            return await self._postgresql(connection, batch, values)
        return await self._sqlite(connection, batch, values)

    @staticmethod
    async def _postgresql(
        connection: AsyncConnection, batch: tuple[Any, ...], values: list[list[Any]]
    ) -> set[tuple[str, str]]:
        # One array per column, unnested server-side: the SQL text never changes, so
        # asyncpg prepares it once per connection, whatever the batch size.
        columns = [list(column) for column in zip(*values, strict=True)]
        result = await connection.exec_driver_sql(_postgresql_sql(), (*batch, *columns))
        return _keys(result)

    @staticmethod
    async def _sqlite(
        connection: AsyncConnection, batch: tuple[Any, ...], values: list[list[Any]]
    ) -> set[tuple[str, str]]:
        added: set[tuple[str, str]] = set()
        for start in range(0, len(values), _SQLITE_ROWS_PER_STATEMENT):
            chunk = values[start : start + _SQLITE_ROWS_PER_STATEMENT]
            parameters: list[Any] = []
            for row in chunk:
                parameters += (*batch, *row)
            result = await connection.exec_driver_sql(_sqlite_sql(len(chunk)), tuple(parameters))
            added |= _keys(result)
        return added

    def values(self, row: dict[str, Any]) -> list[Any]:
        values = [row[name] for name in _ROW_COLUMNS]
        for index, process in self.processors:
            values[index] = process(values[index])
        return values


def _keys(returned: Any) -> set[tuple[str, str]]:
    """The (trace_id, span_id) pairs of the rows RETURNING gave back: the new ones."""
    return {(row[0], row[1]) for row in returned}


_SPAN_INSERTS: dict[str, _SpanInsert] = {}


def _span_insert(dialect: Dialect) -> _SpanInsert:
    """Built once per driver: its bind processors depend on the dialect, not the connection."""
    driver = f"{dialect.name}+{dialect.driver}"
    if driver not in _SPAN_INSERTS:
        _SPAN_INSERTS[driver] = _build_span_insert(dialect)
    return _SPAN_INSERTS[driver]


def _build_span_insert(dialect: Dialect) -> _SpanInsert:
    processors: list[tuple[int, Callable[[Any], Any]]] = []
    for index, name in enumerate(_ROW_COLUMNS):
        if name in _JSON_COLUMNS:
            processors.append((index, _json_text))
            continue
        process = SPANS.c[name].type.dialect_impl(dialect).bind_processor(dialect)
        if process is not None:
            processors.append((index, process))
    received_at = SPANS.c.received_at.type.bind_processor(dialect)
    return _SpanInsert(dialect, tuple(processors), received_at or (lambda value: value))


def _json_text(value: Any) -> str:
    # Strings reaching here are already valid UTF-8 (otlp.py replaces lone surrogates).
    return orjson.dumps(value).decode()


def _column_list() -> str:
    return ", ".join((*_BATCH_COLUMNS, *_ROW_COLUMNS))


@lru_cache(maxsize=1)
def _postgresql_sql() -> str:
    dialect = postgresql.dialect()

    def sql_type(name: str) -> str:
        return str(SPANS.c[name].type.compile(dialect=dialect))

    batch = ", ".join(f"${n}::{sql_type(name)}" for n, name in enumerate(_BATCH_COLUMNS, start=1))
    arrays = ", ".join(
        f"${n}::{sql_type(name)}[]"
        for n, name in enumerate(_ROW_COLUMNS, start=len(_BATCH_COLUMNS) + 1)
    )
    # Only the table's own column names and placeholders go into the text; values are bound.
    return (
        f"INSERT INTO spans ({_column_list()}) SELECT {batch}, * FROM unnest({arrays}) "  # noqa: S608
        "ON CONFLICT (app_id, trace_id, span_id) DO NOTHING RETURNING trace_id, span_id"
    )


@lru_cache(maxsize=64)
def _sqlite_sql(rows: int) -> str:
    row = "(" + ", ".join("?" * (len(_BATCH_COLUMNS) + len(_ROW_COLUMNS))) + ")"
    return (
        f"INSERT INTO spans ({_column_list()}) VALUES {', '.join([row] * rows)} "  # noqa: S608
        "ON CONFLICT (app_id, trace_id, span_id) DO NOTHING RETURNING trace_id, span_id"
    )


# --- the roll-ups ----------------------------------------------------------------------


@dataclass(frozen=True)
class _Statements:
    traces: Any
    tags: Any


@lru_cache(maxsize=4)
def _statements(dialect: str) -> _Statements:
    """The roll-up writes of an ingest, built once per dialect (they are immutable)."""
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
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
            # Spans of one trace sent by several keys: the trace keeps the first key.
            "api_key_id": func.coalesce(old.api_key_id, new.api_key_id),
            "updated_at": new.updated_at,
        },
    )
    return _Statements(traces, insert(TRACE_TAGS).on_conflict_do_nothing())


def _rollups(
    app_id: str, rows: list[dict[str, Any]], now: datetime, senders: dict[str, str | None]
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
                # Left as first written on conflict: when the trace was first stored.
                "received_at": now,
                "updated_at": now,
                "api_key_id": senders.get(trace_id),
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
