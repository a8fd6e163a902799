"""Wire shapes of the trace, span and session routes (after the reference API)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from agentmark_gateway.pagination import Pagination

StatusName = Literal["UNSET", "OK", "ERROR"]


class IngestResult(BaseModel):
    requestId: str = Field(description="Id of this ingest request (X-Request-Id when sent).")
    accepted_spans: int = Field(description="Spans in the request, all stored (re-sent ones once).")


class IngestResponse(BaseModel):
    data: IngestResult


class TraceSummary(BaseModel):
    id: str = Field(description="Trace id, 32 lowercase hex characters.")
    name: str
    status: StatusName = Field(description="ERROR when any span failed, else OK when any is OK.")
    start: datetime
    end: datetime
    latency_ms: float
    cost: float = Field(description="USD, summed over the spans.")
    tokens: int
    input_tokens: int
    output_tokens: int
    span_count: int
    model: str | None
    user_id: str | None
    session_id: str | None
    dataset_run_id: str | None
    tags: list[str]
    api_key_id: str | None = Field(
        description="The key that sent the trace's first spans (null for traces stored "
        "before the gateway recorded it)."
    )


class SpanSummary(BaseModel):
    id: str = Field(description="Span id, 16 lowercase hex characters.")
    trace_id: str
    parent_id: str | None
    name: str
    status: StatusName
    status_message: str | None
    timestamp: datetime = Field(description="Start of the span.")
    end: datetime
    duration_ms: float
    type: Literal["SPAN", "GENERATION"] = Field(description="GENERATION for model calls.")
    span_kind: str = Field(description="AgentMark span kind: llm, tool, agent, function, ...")
    model: str | None
    input_tokens: int
    output_tokens: int
    tokens: int
    cost: float
    prompt_name: str | None
    service_name: str
    session_id: str | None
    user_id: str | None
    tags: list[str]
    metadata: dict[str, str] = Field(description="agentmark.metadata.* attributes.")


class TraceSpan(SpanSummary):
    input: str | None
    output: str | None


class SpanEvent(BaseModel):
    name: str
    timestamp: datetime | None
    attributes: dict[str, Any]


class SpanLink(BaseModel):
    trace_id: str
    span_id: str
    trace_state: str | None
    attributes: dict[str, Any]


class SpanDetail(TraceSpan):
    output_object: str | None
    tool_calls: str | None
    finish_reason: str | None
    otel_kind: str = Field(description="OpenTelemetry span kind: INTERNAL, SERVER, CLIENT, ...")
    scope_name: str | None
    attributes: dict[str, Any]
    resource_attributes: dict[str, Any]
    events: list[SpanEvent]
    links: list[SpanLink]


class SpanNode(BaseModel):
    """A span's place in its trace; the span itself is in ``spans`` under the same id."""

    id: str
    name: str
    type: Literal["SPAN", "GENERATION"]
    status: StatusName
    duration_ms: float
    children: list[SpanNode]


class TraceDetail(TraceSummary):
    input: str | None = Field(description="Input of the root span.")
    output: str | None = Field(description="Output of the root span.")
    spans: list[TraceSpan] = Field(description="Every span, parents before children.")
    tree: list[SpanNode] = Field(description="Root spans with their descendants.")


class SessionSummary(BaseModel):
    id: str
    name: str
    start: datetime = Field(description="First seen: start of the session's first trace.")
    end: datetime = Field(description="Last seen: end of the session's latest trace.")
    first_seen: datetime
    last_seen: datetime
    latency_ms: float
    trace_count: int
    total_tokens: int
    input_tokens: int
    output_tokens: int
    total_cost: float
    user_count: int


class TraceListResponse(BaseModel):
    data: list[TraceSummary]
    pagination: Pagination


class TraceResponse(BaseModel):
    data: TraceDetail


class SpanListResponse(BaseModel):
    data: list[SpanSummary]
    pagination: Pagination


class SpanResponse(BaseModel):
    data: SpanDetail


class SessionListResponse(BaseModel):
    data: list[SessionSummary]
    pagination: Pagination


# The OTLP JSON request body, for the OpenAPI document only: the route parses the
# raw body itself (JSON or protobuf) and validates it in traces/otlp.py.
_ANY_VALUE: dict[str, Any] = {
    "type": "object",
    "description": "OTLP AnyValue: exactly one of the fields.",
    "properties": {
        "stringValue": {"type": "string"},
        "boolValue": {"type": "boolean"},
        "intValue": {"oneOf": [{"type": "string"}, {"type": "integer"}]},
        "doubleValue": {"oneOf": [{"type": "number"}, {"type": "string"}]},
        "bytesValue": {"type": "string", "format": "byte"},
        "arrayValue": {"type": "object", "properties": {"values": {"type": "array", "items": {}}}},
        "kvlistValue": {"type": "object", "properties": {"values": {"type": "array", "items": {}}}},
    },
}
_KEY_VALUES: dict[str, Any] = {
    "type": "array",
    "items": {
        "type": "object",
        "required": ["key"],
        "properties": {"key": {"type": "string"}, "value": _ANY_VALUE},
    },
}
_NANOS: dict[str, Any] = {"oneOf": [{"type": "string", "pattern": "^[0-9]+$"}, {"type": "integer"}]}
OTLP_JSON_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "resourceSpans": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "resource": {"type": "object", "properties": {"attributes": _KEY_VALUES}},
                    "scopeSpans": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "properties": {
                                "scope": {
                                    "type": "object",
                                    "properties": {
                                        "name": {"type": "string"},
                                        "version": {"type": "string"},
                                    },
                                },
                                "spans": {
                                    "type": "array",
                                    "items": {
                                        "type": "object",
                                        "required": ["traceId", "spanId", "startTimeUnixNano"],
                                        "properties": {
                                            "traceId": {
                                                "type": "string",
                                                "pattern": "^[0-9a-f]{32}$",
                                            },
                                            "spanId": {
                                                "type": "string",
                                                "pattern": "^[0-9a-f]{16}$",
                                            },
                                            "parentSpanId": {"type": "string"},
                                            "name": {"type": "string"},
                                            "kind": {"type": "integer", "minimum": 0, "maximum": 5},
                                            "startTimeUnixNano": _NANOS,
                                            "endTimeUnixNano": _NANOS,
                                            "attributes": _KEY_VALUES,
                                            "status": {
                                                "type": "object",
                                                "properties": {
                                                    "code": {"type": "integer"},
                                                    "message": {"type": "string"},
                                                },
                                            },
                                            "events": {
                                                "type": "array",
                                                "items": {"type": "object"},
                                            },
                                            "links": {"type": "array", "items": {"type": "object"}},
                                        },
                                    },
                                },
                            },
                        },
                    },
                },
            },
        }
    },
}
