"""Reading traces, spans and sessions back, always within one app (ingest.py stores)."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import ColumnElement, false, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import defer

from agentmark_gateway.errors import NotFound
from agentmark_gateway.pagination import Page, bounded_count
from agentmark_gateway.traces import derive, rollup
from agentmark_gateway.traces.filters import (
    STATUS_CODES,
    STATUS_NAMES,
    SessionFilters,
    SpanFilters,
    TraceFilters,
)
from agentmark_gateway.traces.models import Span, Trace, TraceTag
from agentmark_gateway.traces.otlp import SPAN_KINDS
from agentmark_gateway.traces.schemas import (
    SessionSummary,
    SpanDetail,
    SpanEvent,
    SpanLink,
    SpanNode,
    SpanSummary,
    TraceDetail,
    TraceSpan,
    TraceSummary,
)
from agentmark_gateway.traces.times import moment

# Deeper spans hang under their ancestor at this depth, so no trace can
# overflow a recursive serializer.
MAX_TREE_DEPTH = 64
_OTEL_KIND_NAMES = {code: name.removeprefix("SPAN_KIND_") for name, code in SPAN_KINDS.items()}


# --- traces ----------------------------------------------------------------------------


def _trace_summary(row: Any, tags: list[str]) -> TraceSummary:
    return TraceSummary(
        id=row.trace_id,
        name=row.name or "",
        status=STATUS_NAMES.get(row.status_code, "UNSET"),
        start=moment(row.start_ns),
        end=moment(row.end_ns),
        latency_ms=(row.end_ns - row.start_ns) / 1_000_000,
        cost=float(row.cost or 0.0),
        tokens=int(row.input_tokens) + int(row.output_tokens),
        input_tokens=int(row.input_tokens),
        output_tokens=int(row.output_tokens),
        span_count=int(row.span_count),
        model=row.model,
        user_id=row.user_id,
        session_id=row.session_id,
        dataset_run_id=row.dataset_run_id,
        tags=tags,
    )


async def _tags_by_trace(
    session: AsyncSession, app_id: str, trace_ids: list[str]
) -> dict[str, list[str]]:
    found: dict[str, list[str]] = defaultdict(list)
    if trace_ids:
        result = await session.execute(
            select(TraceTag.trace_id, TraceTag.tag)
            .where(TraceTag.app_id == app_id, TraceTag.trace_id.in_(trace_ids))
            .order_by(TraceTag.trace_id, TraceTag.tag)
        )
        for trace_id, tag in result:
            found[trace_id].append(tag)
    return found


async def list_traces(
    session: AsyncSession, *, app_id: str, filters: TraceFilters, page: Page
) -> tuple[list[TraceSummary], int]:
    filtered = rollup.filtered_traces(app_id, filters)
    total = await session.scalar(bounded_count(filtered, page.offset))
    traces = filtered.subquery("traces")
    query = rollup.ordered(
        traces, filters.sort, rollup.trace_sort_columns(traces), traces.c.trace_id
    )
    rows = (await session.execute(query.limit(page.limit).offset(page.offset))).all()
    tags = await _tags_by_trace(session, app_id, [row.trace_id for row in rows])
    return [_trace_summary(row, tags.get(row.trace_id, [])) for row in rows], int(total or 0)


async def _trace_spans(session: AsyncSession, app_id: str, trace_id: str) -> list[Span]:
    result = await session.scalars(
        select(Span)
        .where(Span.app_id == app_id, Span.trace_id == trace_id)
        .order_by(Span.start_time_ns, Span.span_id)
    )
    spans = list(result)
    if not spans:
        raise NotFound(f"Trace '{trace_id}' not found", code="trace_not_found")
    return spans


def _span_fields(span: Span) -> dict[str, Any]:
    service_name = (span.resource_attributes or {}).get("service.name")
    return {
        "id": span.span_id,
        "trace_id": span.trace_id,
        "parent_id": span.parent_span_id,
        "name": span.name,
        "status": STATUS_NAMES.get(span.status_code, "UNSET"),
        "status_message": span.status_message,
        "timestamp": moment(span.start_time_ns),
        "end": moment(span.end_time_ns),
        "duration_ms": span.duration_ms,
        "type": "GENERATION" if span.span_type == derive.LLM else "SPAN",
        "span_kind": span.span_type or "span",
        "model": span.model,
        "input_tokens": span.input_tokens,
        "output_tokens": span.output_tokens,
        "tokens": span.input_tokens + span.output_tokens,
        "cost": span.cost or 0.0,
        "prompt_name": span.prompt_name,
        "service_name": service_name if isinstance(service_name, str) else "",
        "session_id": span.session_id,
        "user_id": span.user_id,
        "tags": list(span.tags or []),
        "metadata": derive.metadata_of(span.attributes or {}),
    }


def _node(span: Span) -> SpanNode:
    return SpanNode(
        id=span.span_id,
        name=span.name,
        type="GENERATION" if span.span_type == derive.LLM else "SPAN",
        status=STATUS_NAMES.get(span.status_code, "UNSET"),
        duration_ms=span.duration_ms,
        children=[],
    )


def _tree(spans: list[Span]) -> tuple[list[SpanNode], list[Span]]:
    """Root nodes (spans without a parent in the trace) and the spans in tree order."""
    by_id = {span.span_id: span for span in spans}
    children: dict[str, list[Span]] = defaultdict(list)
    roots: list[Span] = []
    for span in spans:  # in start order, so each list of siblings is too
        parent = span.parent_span_id
        if parent and parent in by_id and parent != span.span_id:
            children[parent].append(span)
        else:
            roots.append(span)

    nodes: list[SpanNode] = []
    order: list[Span] = []
    seen: set[str] = set()

    def grow(start: Span) -> None:
        # An explicit stack: a trace may be deeper than Python's recursion limit.
        stack: list[tuple[Span, list[SpanNode], int]] = [(start, nodes, 0)]
        while stack:
            span, siblings, depth = stack.pop()
            if span.span_id in seen:
                continue
            seen.add(span.span_id)
            order.append(span)
            current = _node(span)
            siblings.append(current)
            # Past the depth cap, descendants hang beside their ancestor instead.
            below = (
                (current.children, depth + 1) if depth + 1 < MAX_TREE_DEPTH else (siblings, depth)
            )
            for child in reversed(children.get(span.span_id, [])):
                stack.append((child, *below))

    for root in roots:
        grow(root)
    # Spans whose parents form a cycle have no root: show them as roots.
    for span in spans:
        if span.span_id not in seen:
            grow(span)
    return nodes, order


async def get_trace(session: AsyncSession, *, app_id: str, trace_id: str) -> TraceDetail:
    spans = await _trace_spans(session, app_id, trace_id)
    tree, ordered = _tree(spans)
    root = ordered[0]
    named = next((s.trace_name for s in spans if s.trace_name), None)
    input_tokens = sum(s.input_tokens for s in spans)
    output_tokens = sum(s.output_tokens for s in spans)
    start_ns = min(s.start_time_ns for s in spans)
    end_ns = max(s.end_time_ns for s in spans)
    tags = sorted({tag for span in spans for tag in span.tags or ()})
    return TraceDetail(
        id=trace_id,
        name=named or next((s.name for s in spans if s.parent_span_id is None), root.name),
        status=STATUS_NAMES[max(s.status_code for s in spans)],
        start=moment(start_ns),
        end=moment(end_ns),
        latency_ms=(end_ns - start_ns) / 1_000_000,
        cost=sum(s.cost or 0.0 for s in spans),
        tokens=input_tokens + output_tokens,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        span_count=len(spans),
        model=max((s.model for s in spans if s.model), default=None),
        user_id=max((s.user_id for s in spans if s.user_id), default=None),
        session_id=max((s.session_id for s in spans if s.session_id), default=None),
        dataset_run_id=max((s.dataset_run_id for s in spans if s.dataset_run_id), default=None),
        tags=tags,
        input=root.input,
        output=root.output,
        spans=[TraceSpan(**_span_fields(s), input=s.input, output=s.output) for s in ordered],
        tree=tree,
    )


# --- spans -----------------------------------------------------------------------------


async def list_trace_spans(
    session: AsyncSession, *, app_id: str, trace_id: str, page: Page
) -> tuple[list[SpanSummary], int]:
    where = (Span.app_id == app_id, Span.trace_id == trace_id)
    counted = bounded_count(select(Span.id).where(*where), page.offset)
    total = int(await session.scalar(counted) or 0)
    if total == 0:
        raise NotFound(f"Trace '{trace_id}' not found", code="trace_not_found")
    result = await session.scalars(
        select(Span)
        .options(defer(Span.input), defer(Span.output))
        .where(*where)
        .order_by(Span.start_time_ns, Span.span_id)
        .limit(page.limit)
        .offset(page.offset)
    )
    return [SpanSummary(**_span_fields(span)) for span in result], total


def _type_condition(value: str) -> ColumnElement[bool]:
    kind = value.strip().lower()
    if kind == "generation":
        return Span.span_type == derive.LLM
    if kind == "span":
        return or_(Span.span_type.is_(None), Span.span_type != derive.LLM)
    if kind == "event":
        return false()  # spans are never point events here; OTLP events live inside spans
    return Span.span_type == kind


def _span_conditions(app_id: str, filters: SpanFilters) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = [Span.app_id == app_id]
    if filters.trace_id is not None:
        conditions.append(Span.trace_id == filters.trace_id.lower())
    if filters.type is not None:
        conditions.append(_type_condition(filters.type))
    if filters.status is not None:
        conditions.append(Span.status_code == STATUS_CODES[filters.status])
    if filters.name is not None:
        conditions.append(Span.name == filters.name)
    if filters.model is not None:
        conditions.append(Span.model == filters.model)
    if filters.min_duration_ms is not None:
        conditions.append(Span.duration_ms >= filters.min_duration_ms)
    if filters.max_duration_ms is not None:
        conditions.append(Span.duration_ms <= filters.max_duration_ms)
    if filters.start_ns is not None:
        conditions.append(Span.start_time_ns >= filters.start_ns)
    if filters.end_ns is not None:
        conditions.append(Span.start_time_ns <= filters.end_ns)
    if filters.user_id is not None:
        traces = rollup.trace_ids_where(app_id, Trace.user_id == filters.user_id)
        conditions.append(Span.trace_id.in_(traces))
    if filters.session_id is not None:
        traces = rollup.trace_ids_where(app_id, Trace.session_id == filters.session_id)
        conditions.append(Span.trace_id.in_(traces))
    return conditions


async def list_spans(
    session: AsyncSession, *, app_id: str, filters: SpanFilters, page: Page
) -> tuple[list[SpanSummary], int]:
    conditions = _span_conditions(app_id, filters)
    counted = bounded_count(select(Span.id).where(*conditions), page.offset)
    total = int(await session.scalar(counted) or 0)
    result = await session.scalars(
        select(Span)
        .options(defer(Span.input), defer(Span.output))
        .where(*conditions)
        .order_by(Span.start_time_ns.desc(), Span.trace_id, Span.span_id)
        .limit(page.limit)
        .offset(page.offset)
    )
    return [SpanSummary(**_span_fields(span)) for span in result], total


async def get_span(
    session: AsyncSession, *, app_id: str, trace_id: str, span_id: str
) -> SpanDetail:
    span = await session.scalar(
        select(Span).where(
            Span.app_id == app_id, Span.trace_id == trace_id, Span.span_id == span_id
        )
    )
    if span is None:
        known_trace = await session.scalar(
            select(Span.id).where(Span.app_id == app_id, Span.trace_id == trace_id).limit(1)
        )
        if known_trace is None:
            raise NotFound(f"Trace '{trace_id}' not found", code="trace_not_found")
        raise NotFound(f"Span '{span_id}' not found in trace '{trace_id}'", code="span_not_found")
    attributes = span.attributes or {}
    return SpanDetail(
        **_span_fields(span),
        input=span.input,
        output=span.output,
        output_object=derive.text_of(derive.first(attributes, derive.OUTPUT_OBJECT_KEYS)),
        tool_calls=derive.text_of(derive.first(attributes, derive.TOOL_CALL_KEYS)),
        finish_reason=derive.text_of(derive.first(attributes, derive.FINISH_REASON_KEYS)),
        otel_kind=_OTEL_KIND_NAMES.get(span.kind, "UNSPECIFIED"),
        scope_name=span.scope_name,
        attributes=attributes,
        resource_attributes=span.resource_attributes or {},
        events=[
            SpanEvent(
                name=event.get("name", ""),
                timestamp=moment(event["time_unix_nano"]) if event.get("time_unix_nano") else None,
                attributes=event.get("attributes") or {},
            )
            for event in span.events or ()
        ],
        links=[SpanLink(**link) for link in span.links or ()],
    )


# --- sessions --------------------------------------------------------------------------


def _session_summary(row: Any) -> SessionSummary:
    first_seen = moment(row.first_ns)
    last_seen = moment(row.last_ns)
    return SessionSummary(
        id=row.session_id,
        name=row.name or row.session_id,
        start=first_seen,
        end=last_seen,
        first_seen=first_seen,
        last_seen=last_seen,
        latency_ms=(row.last_ns - row.first_ns) / 1_000_000,
        trace_count=int(row.trace_count),
        total_tokens=int(row.tokens),
        input_tokens=int(row.input_tokens),
        output_tokens=int(row.output_tokens),
        total_cost=float(row.cost or 0.0),
        user_count=int(row.user_count),
    )


async def list_sessions(
    session: AsyncSession, *, app_id: str, filters: SessionFilters, page: Page
) -> tuple[list[SessionSummary], int]:
    rolled = rollup.session_rollup(app_id, filters)
    total = await session.scalar(bounded_count(rolled, page.offset))
    sessions = rolled.subquery("sessions")
    query = rollup.ordered(
        sessions, filters.sort, rollup.session_sort_columns(sessions), sessions.c.session_id
    )
    rows = (await session.execute(query.limit(page.limit).offset(page.offset))).all()
    return [_session_summary(row) for row in rows], int(total or 0)


async def list_session_traces(
    session: AsyncSession, *, app_id: str, session_id: str, page: Page
) -> tuple[list[TraceSummary], int]:
    filters = TraceFilters(session_id=session_id)
    traces, total = await list_traces(session, app_id=app_id, filters=filters, page=page)
    if total == 0:
        raise NotFound(f"Session '{session_id}' not found", code="session_not_found")
    return traces, total
