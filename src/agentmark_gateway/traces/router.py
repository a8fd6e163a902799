"""OTLP ingest and the trace, span and session read routes."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.responses import JSONResponse
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from agentmark_gateway.api_keys.verify import VerifiedKey
from agentmark_gateway.api_route import ApiRoute
from agentmark_gateway.bodies import read_body
from agentmark_gateway.deps import DbSession, GatewayDep
from agentmark_gateway.pagination import PageDep, paginated
from agentmark_gateway.permissions.enforce import requires
from agentmark_gateway.pricing import price_table
from agentmark_gateway.runtime import Gateway
from agentmark_gateway.traces import graph, ingest, otlp, service
from agentmark_gateway.traces.filters import (
    MAX_LIST_VALUES,
    SESSION_SORTS,
    TRACE_SORTS,
    SessionFilters,
    Sort,
    SpanFilters,
    TraceFilters,
)
from agentmark_gateway.traces.params import date_range, ns_or_none, parse_sort, parse_status
from agentmark_gateway.traces.schemas import (
    OTLP_JSON_SCHEMA,
    IngestResponse,
    SessionListResponse,
    SpanListResponse,
    SpanResponse,
    TraceListResponse,
    TraceResponse,
)
from agentmark_gateway.usage.counter import stored

router = APIRouter(route_class=ApiRoute)

TraceId = Annotated[
    str, Path(alias="traceId", max_length=64, description="Trace id (32 hex characters).")
]
SpanId = Annotated[
    str, Path(alias="spanId", max_length=64, description="Span id (16 hex characters).")
]
SessionId = Annotated[str, Path(alias="sessionId", max_length=255, description="Session id.")]
Text = Annotated[str | None, Query(max_length=1000)]
StartDate = Annotated[
    str | None, Query(description="ISO date or date-time (UTC when no zone); inclusive.")
]
EndDate = Annotated[
    str | None,
    Query(description="ISO date or date-time, inclusive; a bare date covers its whole day."),
]
SortParam = Annotated[
    str | None, Query(description="Sort key, '-' in front for descending (e.g. -start_time).")
]
SortBy = Annotated[str | None, Query(description="Sort key (alternative to sort).")]
SortOrder = Annotated[str | None, Query(description="asc or desc, with sort_by.")]

INGEST_OPENAPI: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "An OTLP ExportTraceServiceRequest; Content-Encoding: gzip allowed.",
        "content": {
            "application/json": {"schema": OTLP_JSON_SCHEMA},
            "application/x-protobuf": {"schema": {"type": "string", "format": "binary"}},
        },
    }
}


@router.post(
    "/v1/traces",
    summary="Ingest OTLP spans",
    description="OTLP/HTTP trace export, JSON or protobuf, optionally gzipped. Every span of "
    "the request is stored in one transaction before the answer; re-sent spans are stored once.",
    response_model=IngestResponse,
    responses={
        200: {
            "content": {
                "application/x-protobuf": {"schema": {"type": "string", "format": "binary"}}
            },
            "description": "JSON for a JSON request; for protobuf, an empty "
            "ExportTraceServiceResponse.",
        },
        413: {"description": "Body too large (after decompression)."},
        415: {"description": "Content-Type is neither JSON nor protobuf."},
    },
    openapi_extra=INGEST_OPENAPI,
)
async def ingest_traces(
    *,
    key: VerifiedKey = requires("trace.ingest"),
    request: Request,
    gateway: GatewayDep,
) -> Any:
    encoding = otlp.encoding_of(request.headers.get("content-type"))
    body = await read_body(request, gateway.settings.max_body_bytes)
    spans = otlp.decode(body, encoding)
    accepted = await store_for_key(request, gateway, key, spans)
    if encoding is otlp.Encoding.PROTOBUF:
        return Response(
            ExportTraceServiceResponse().SerializeToString(), media_type="application/x-protobuf"
        )
    return {"data": {"requestId": _request_id(request), "accepted_spans": accepted}}


async def store_for_key(
    request: Request, gateway: Gateway, key: VerifiedKey, spans: Sequence[otlp.OtlpSpan]
) -> int:
    """Store decoded spans for the key's app through this process's writer (the
    answer waits for their commit), and count them in the key's usage."""
    accepted = await ingest.write_spans(
        gateway.writes,
        app_id=key.app_id,
        spans=spans,
        prices=price_table(gateway.settings.model_prices),
        api_key_id=key.id,
    )
    stored(request, spans=accepted)
    return accepted


def _request_id(request: Request) -> str:
    sent = request.headers.get("x-request-id")
    if sent:
        try:
            return str(uuid.UUID(sent))
        except ValueError:
            pass
    return str(uuid.uuid4())


async def trace_filters(
    start_date: StartDate = None,
    end_date: EndDate = None,
    status: Annotated[str | None, Query(description="OK, ERROR or UNSET.")] = None,
    name: Text = None,
    user_id: Text = None,
    session_id: Text = None,
    tag: Annotated[
        list[str] | None,
        Query(
            max_length=MAX_LIST_VALUES,
            description=f"Repeat for several (all must match), at most {MAX_LIST_VALUES}.",
        ),
    ] = None,
    model: Text = None,
    dataset_run_id: Text = None,
    key_id: Annotated[
        str | None, Query(max_length=64, description="Id of the API key that sent the trace.")
    ] = None,
    sort: SortParam = None,
    sort_by: SortBy = None,
    sort_order: SortOrder = None,
) -> TraceFilters:
    start, end = date_range(start_date, end_date)
    return TraceFilters(
        start_ns=ns_or_none(start),
        end_ns=ns_or_none(end),
        status=parse_status(status),
        name=name,
        user_id=user_id,
        session_id=session_id,
        tags=tuple(t for t in tag or () if t),
        model=model,
        dataset_run_id=dataset_run_id,
        api_key_id=key_id,
        sort=parse_sort(
            sort, sort_by, sort_order, allowed=TRACE_SORTS, default=Sort("start_time", True)
        ),
    )


async def span_filters(
    trace_id: Text = None,
    type: Annotated[
        str | None,
        Query(description="GENERATION, SPAN, or an AgentMark span kind (llm, tool, agent, ...)."),
    ] = None,
    status: Annotated[str | None, Query(description="OK, ERROR or UNSET.")] = None,
    name: Text = None,
    model: Text = None,
    min_duration: Annotated[float | None, Query(ge=0, description="Milliseconds.")] = None,
    max_duration: Annotated[float | None, Query(ge=0, description="Milliseconds.")] = None,
    start_date: StartDate = None,
    end_date: EndDate = None,
    user_id: Text = None,
    session_id: Text = None,
) -> SpanFilters:
    start, end = date_range(start_date, end_date)
    return SpanFilters(
        trace_id=trace_id,
        type=type,
        status=parse_status(status),
        name=name,
        model=model,
        min_duration_ms=min_duration,
        max_duration_ms=max_duration,
        start_ns=ns_or_none(start),
        end_ns=ns_or_none(end),
        user_id=user_id,
        session_id=session_id,
    )


async def session_filters(
    search: Annotated[
        str | None, Query(max_length=1000, description="Part of the session id or name.")
    ] = None,
    start_date: StartDate = None,
    end_date: EndDate = None,
    sort: SortParam = None,
    sort_by: SortBy = None,
    sort_order: SortOrder = None,
) -> SessionFilters:
    start, end = date_range(start_date, end_date)
    return SessionFilters(
        search=search,
        start_ns=ns_or_none(start),
        end_ns=ns_or_none(end),
        sort=parse_sort(
            sort, sort_by, sort_order, allowed=SESSION_SORTS, default=Sort("last_seen", True)
        ),
    )


@router.get("/v1/traces", summary="List traces", response_model=TraceListResponse)
async def list_traces(
    *,
    key: VerifiedKey = requires("trace.read"),
    db: DbSession,
    page: PageDep,
    filters: Annotated[TraceFilters, Depends(trace_filters)],
) -> dict[str, Any]:
    traces, total = await service.list_traces(db, app_id=key.app_id, filters=filters, page=page)
    return paginated(traces, total, page)


@router.get(
    "/v1/traces/{traceId}", summary="Get a trace with its spans", response_model=TraceResponse
)
async def get_trace(
    *,
    key: VerifiedKey = requires("trace.read"),
    db: DbSession,
    trace_id: TraceId,
    fields: Annotated[
        str | None,
        Query(
            max_length=100,
            description="`graph`: add the trace's agent graph under `graph`, as "
            "GET /v1/traces/{traceId}/graph lists it.",
        ),
    ] = None,
) -> Any:
    trace = await service.get_trace(db, app_id=key.app_id, trace_id=trace_id.lower())
    if not graph.wants_graph(fields):
        return {"data": trace}
    nodes = await graph.trace_graph(db, app_id=key.app_id, trace_id=trace.id)
    # Outside the response model, which has no graph for the plain answer.
    return JSONResponse({"data": {**trace.model_dump(mode="json"), "graph": nodes}})


@router.get(
    "/v1/traces/{traceId}/spans",
    summary="List the spans of a trace",
    response_model=SpanListResponse,
)
async def list_trace_spans(
    *,
    key: VerifiedKey = requires("span.read"),
    db: DbSession,
    trace_id: TraceId,
    page: PageDep,
) -> dict[str, Any]:
    spans, total = await service.list_trace_spans(
        db, app_id=key.app_id, trace_id=trace_id.lower(), page=page
    )
    return paginated(spans, total, page)


@router.get(
    "/v1/traces/{traceId}/spans/{spanId}",
    summary="Get a span with its attributes, events, input and output",
    response_model=SpanResponse,
)
async def get_span(
    *,
    key: VerifiedKey = requires("span.read"),
    db: DbSession,
    trace_id: TraceId,
    span_id: SpanId,
) -> dict[str, Any]:
    span = await service.get_span(
        db, app_id=key.app_id, trace_id=trace_id.lower(), span_id=span_id.lower()
    )
    return {"data": span}


@router.get("/v1/spans", summary="List spans", response_model=SpanListResponse)
async def list_spans(
    *,
    key: VerifiedKey = requires("span.read"),
    db: DbSession,
    page: PageDep,
    filters: Annotated[SpanFilters, Depends(span_filters)],
) -> dict[str, Any]:
    spans, total = await service.list_spans(db, app_id=key.app_id, filters=filters, page=page)
    return paginated(spans, total, page)


@router.get("/v1/sessions", summary="List sessions", response_model=SessionListResponse)
async def list_sessions(
    *,
    key: VerifiedKey = requires("session.read"),
    db: DbSession,
    page: PageDep,
    filters: Annotated[SessionFilters, Depends(session_filters)],
) -> dict[str, Any]:
    sessions, total = await service.list_sessions(db, app_id=key.app_id, filters=filters, page=page)
    return paginated(sessions, total, page)


@router.get(
    "/v1/sessions/{sessionId}/traces",
    summary="List the traces of a session",
    response_model=TraceListResponse,
)
async def list_session_traces(
    *,
    key: VerifiedKey = requires("session.read"),
    db: DbSession,
    session_id: SessionId,
    page: PageDep,
) -> dict[str, Any]:
    traces, total = await service.list_session_traces(
        db, app_id=key.app_id, session_id=session_id, page=page
    )
    return paginated(traces, total, page)
