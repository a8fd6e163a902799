"""SQL building blocks over the trace roll-ups (``traces``) and sessions made of them.

Every query here starts from ``app_id``; none leaves this module without it.
The same SQL runs on SQLite and PostgreSQL: filters use plain columns, and tags
live one per row in ``trace_tags``.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Select, exists, func, select

from agentmark_gateway.scores.models import Score
from agentmark_gateway.traces.filters import STATUS_CODES, SessionFilters, Sort, TraceFilters
from agentmark_gateway.traces.models import Span, Trace, TraceTag

AnySelect = Select[*tuple[Any, ...]]


def trace_name() -> ColumnElement[str]:
    """The SDK's trace name, else the root span's name, else the earliest span's."""
    return func.coalesce(Trace.trace_name, Trace.root_name, Trace.first_name)


def trace_rows(app_id: str) -> AnySelect:
    """One row per trace of the app with its figures, under the names the readers use."""
    return select(
        Trace.trace_id.label("trace_id"),
        trace_name().label("name"),
        Trace.start_time_ns.label("start_ns"),
        Trace.end_time_ns.label("end_ns"),
        (Trace.end_time_ns - Trace.start_time_ns).label("duration_ns"),
        Trace.span_count.label("span_count"),
        Trace.status_code.label("status_code"),
        Trace.input_tokens.label("input_tokens"),
        Trace.output_tokens.label("output_tokens"),
        (Trace.input_tokens + Trace.output_tokens).label("tokens"),
        Trace.cost.label("cost"),
        Trace.model.label("model"),
        Trace.user_id.label("user_id"),
        Trace.session_id.label("session_id"),
        Trace.session_name.label("session_name"),
        Trace.dataset_run_id.label("dataset_run_id"),
        Trace.api_key_id.label("api_key_id"),
    ).where(Trace.app_id == app_id)


def trace_ids_where(app_id: str, *conditions: ColumnElement[bool]) -> AnySelect:
    """Ids of the app's traces meeting the conditions (on ``Trace`` columns)."""
    return select(Trace.trace_id).where(Trace.app_id == app_id, *conditions)


def filtered_traces(app_id: str, filters: TraceFilters) -> AnySelect:
    query = trace_rows(app_id)
    if filters.start_ns is not None:
        query = query.where(Trace.start_time_ns >= filters.start_ns)
    if filters.end_ns is not None:
        query = query.where(Trace.start_time_ns <= filters.end_ns)
    if filters.status is not None:
        query = query.where(Trace.status_code == STATUS_CODES[filters.status])
    if filters.name is not None:
        query = query.where(trace_name() == filters.name)
    if filters.user_id is not None:
        query = query.where(Trace.user_id == filters.user_id)
    if filters.session_id is not None:
        query = query.where(Trace.session_id == filters.session_id)
    if filters.dataset_run_id is not None:
        query = query.where(Trace.dataset_run_id == filters.dataset_run_id)
    if filters.api_key_id is not None:
        query = query.where(Trace.api_key_id == filters.api_key_id)
    if filters.model is not None:
        # Any model the trace called, not only the first one seen.
        query = query.where(
            Trace.trace_id.in_(
                select(Span.trace_id).where(Span.app_id == app_id, Span.model == filters.model)
            )
        )
    if filters.tags:
        query = query.where(Trace.trace_id.in_(_traces_with_all_tags(app_id, filters.tags)))
    if filters.has_score is not None:
        scored = exists().where(Score.app_id == app_id, Score.resource_id == Trace.trace_id)
        query = query.where(scored if filters.has_score else ~scored)
    return query


def _traces_with_all_tags(app_id: str, tags: tuple[str, ...]) -> AnySelect:
    """Ids of the app's traces carrying every one of ``tags``: one statement
    whatever their number (a tag is one row per trace, so counting rows counts tags)."""
    wanted = sorted(set(tags))
    return (
        select(TraceTag.trace_id)
        .where(TraceTag.app_id == app_id, TraceTag.tag.in_(wanted))
        .group_by(TraceTag.trace_id)
        .having(func.count() == len(wanted))
    )


def ordered(rows: Any, sort: Sort, columns: dict[str, Any], tiebreak: Any) -> AnySelect:
    """``select(rows)`` ordered by the sort key, ties broken by id for stable pages."""
    column = columns[sort.key]
    primary = column.desc() if sort.descending else column.asc()
    return select(rows).order_by(primary, tiebreak)


def trace_sort_columns(traces: Any) -> dict[str, Any]:
    c = traces.c
    return {
        "start_time": c.start_ns,
        "end_time": c.end_ns,
        "duration": c.duration_ns,
        "cost": c.cost,
        "tokens": c.tokens,
        "name": c.name,
        "span_count": c.span_count,
    }


def session_rollup(app_id: str, filters: SessionFilters) -> AnySelect:
    """One row per session: its traces rolled up again."""
    first_seen = func.min(Trace.start_time_ns)
    last_seen = func.max(Trace.end_time_ns)
    query = (
        select(
            Trace.session_id.label("session_id"),
            func.max(Trace.session_name).label("name"),
            func.count().label("trace_count"),
            first_seen.label("first_ns"),
            last_seen.label("last_ns"),
            (last_seen - first_seen).label("duration_ns"),
            func.sum(Trace.input_tokens).label("input_tokens"),
            func.sum(Trace.output_tokens).label("output_tokens"),
            func.sum(Trace.input_tokens + Trace.output_tokens).label("tokens"),
            func.sum(Trace.cost).label("cost"),
            func.count(func.distinct(Trace.user_id)).label("user_count"),
        )
        .where(Trace.app_id == app_id, Trace.session_id.is_not(None))
        .group_by(Trace.session_id)
    )
    if filters.search:
        needle = filters.search.lower()
        query = query.where(
            func.lower(Trace.session_id).contains(needle, autoescape=True)
            | func.lower(func.coalesce(Trace.session_name, "")).contains(needle, autoescape=True)
        )
    if filters.start_ns is not None:
        query = query.having(last_seen >= filters.start_ns)
    if filters.end_ns is not None:
        query = query.having(first_seen <= filters.end_ns)
    return query


def session_sort_columns(sessions: Any) -> dict[str, Any]:
    c = sessions.c
    return {
        "last_seen": c.last_ns,
        "first_seen": c.first_ns,
        "trace_count": c.trace_count,
        "cost": c.cost,
        "tokens": c.tokens,
        "duration": c.duration_ns,
        "name": func.coalesce(c.name, c.session_id),
    }
