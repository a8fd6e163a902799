"""Reading traces, spans and sessions back, always within one app (ingest.py stores)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from sqlalchemy import ColumnElement, and_, false, or_, select
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
        api_key_id=row.api_key_id,
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


@dataclass(frozen=True)
class TraceCursor:
    """Where a newest-first page of traces ends: the next page starts after it."""

    start_ns: int
    trace_id: str


async def list_traces_before(
    session: AsyncSession,
    *,
    app_id: str,
    filters: TraceFilters,
    before: TraceCursor | None,
    limit: int,
) -> tuple[list[TraceSummary], TraceCursor | None]:
    """Newest first, paged by keyset: a page deep in a big app costs what the first does
    (an offset would read every row before it). Returns the page and the next cursor."""
    query = rollup.filtered_traces(app_id, filters)
    if before is not None:
        query = query.where(
            or_(
                Trace.start_time_ns < before.start_ns,
                and_(Trace.start_time_ns == before.start_ns, Trace.trace_id < before.trace_id),
            )
        )
    query = query.order_by(Trace.start_time_ns.desc(), Trace.trace_id.desc()).limit(limit + 1)
    rows = (await session.execute(query)).all()
    more, rows = len(rows) > limit, rows[:limit]
    tags = await _tags_by_trace(session, app_id, [row.trace_id for row in rows])
    traces = [_trace_summary(row, tags.get(row.trace_id, [])) for row in rows]
    after = TraceCursor(rows[-1].start_ns, rows[-1].trace_id) if more else None
    return traces, after


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


class _TreeSpan(Protocol):
    """What placing a span in its tree reads: a Span, or a row of its columns."""

    @property
    def span_id(self) -> str: ...

    @property
    def parent_span_id(self) -> str | None: ...


S = TypeVar("S", bound=_TreeSpan)


def _tree_order(spans: Sequence[S]) -> list[tuple[S, int]]:
    """The spans in tree order (each after its parent, siblings by start) with their depth.

    Spans given in start order keep it among siblings. Past ``MAX_TREE_DEPTH``
    descendants hang beside their ancestor; spans whose parents form a cycle show
    as roots."""
    by_id = {span.span_id: span for span in spans}
    children: dict[str, list[S]] = defaultdict(list)
    roots: list[S] = []
    for span in spans:
        parent = span.parent_span_id
        if parent and parent in by_id and parent != span.span_id:
            children[parent].append(span)
        else:
            roots.append(span)

    order: list[tuple[S, int]] = []
    seen: set[str] = set()

    def grow(start: S) -> None:
        # An explicit stack: a trace may be deeper than Python's recursion limit.
        stack: list[tuple[S, int]] = [(start, 0)]
        while stack:
            span, depth = stack.pop()
            if span.span_id in seen:
                continue
            seen.add(span.span_id)
            order.append((span, depth))
            below = min(depth + 1, MAX_TREE_DEPTH - 1)
            for child in reversed(children.get(span.span_id, [])):
                stack.append((child, below))

    for root in roots:
        grow(root)
    for span in spans:
        if span.span_id not in seen:
            grow(span)
    return order


def _tree(spans: list[Span]) -> tuple[list[SpanNode], list[Span]]:
    """Root nodes (spans without a parent in the trace) and the spans in tree order."""
    nodes: list[SpanNode] = []
    order: list[Span] = []
    # The latest node at each depth: in tree order, a span's parent (or, past the
    # depth cap, the ancestor it hangs beside) is the latest one a level up.
    latest: list[SpanNode] = []
    for span, depth in _tree_order(spans):
        order.append(span)
        node = _node(span)
        (latest[depth - 1].children if depth else nodes).append(node)
        del latest[depth:]
        latest.append(node)
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
    sender = await session.scalar(
        select(Trace.api_key_id).where(Trace.app_id == app_id, Trace.trace_id == trace_id)
    )
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
        api_key_id=sender,
        input=root.input,
        output=root.output,
        spans=[TraceSpan(**_span_fields(s), input=s.input, output=s.output) for s in ordered],
        tree=tree,
    )


@dataclass(frozen=True)
class OutlineSpan:
    """A span as the waterfall draws it: no input, output or attributes."""

    id: str
    name: str
    kind: str  # the AgentMark span kind: llm, tool, agent, ... or span
    type: str  # GENERATION or SPAN
    status: str
    start_ns: int
    end_ns: int
    duration_ms: float
    depth: int


@dataclass(frozen=True)
class TraceOutline:
    trace: TraceSummary
    spans: list[OutlineSpan]  # in tree order: each span after its parent


async def get_trace_outline(session: AsyncSession, *, app_id: str, trace_id: str) -> TraceOutline:
    """A trace's figures (its roll-up) and its spans in tree order with their depth.

    Plain columns, no ORM objects or models per span: a 5,000-span trace stays light."""
    row = (
        await session.execute(rollup.trace_rows(app_id).where(Trace.trace_id == trace_id))
    ).first()
    if row is None:
        raise NotFound(f"Trace '{trace_id}' not found", code="trace_not_found")
    spans = (
        await session.execute(
            select(
                Span.span_id,
                Span.parent_span_id,
                Span.name,
                Span.span_type,
                Span.status_code,
                Span.start_time_ns,
                Span.end_time_ns,
                Span.duration_ms,
            )
            .where(Span.app_id == app_id, Span.trace_id == trace_id)
            .order_by(Span.start_time_ns, Span.span_id)
        )
    ).all()
    tags = await _tags_by_trace(session, app_id, [trace_id])
    outline = [
        OutlineSpan(
            id=span.span_id,
            name=span.name,
            kind=span.span_type or "span",
            type="GENERATION" if span.span_type == derive.LLM else "SPAN",
            status=STATUS_NAMES.get(span.status_code, "UNSET"),
            start_ns=span.start_time_ns,
            end_ns=span.end_time_ns,
            duration_ms=span.duration_ms,
            depth=depth,
        )
        for span, depth in _tree_order(spans)
    ]
    return TraceOutline(trace=_trace_summary(row, tags.get(trace_id, [])), spans=outline)


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
