"""``POST /v1/export-traces``: the old TypeScript SDK's span export, stored as OTLP spans are."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from agentmark_gateway.api_keys.verify import VerifiedKey
from agentmark_gateway.api_route import ApiRoute
from agentmark_gateway.bodies import read_body
from agentmark_gateway.deps import GatewayDep
from agentmark_gateway.errors import UnsupportedMediaType
from agentmark_gateway.permissions.enforce import requires
from agentmark_gateway.traces import legacy
from agentmark_gateway.traces.router import store_for_key

router = APIRouter(tags=["Traces"], route_class=ApiRoute)

_ROW_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "One span, keyed by the old span table's column names.",
    "properties": {
        "Timestamp": {"type": "number", "description": "Start, nanoseconds since the epoch."},
        "TraceId": {"type": "string", "description": "32 hex characters, or a UUID."},
        "SpanId": {"type": "string", "description": "16 hex characters."},
        "ParentSpanId": {"type": "string", "description": "Empty for a root span."},
        "TraceState": {"type": "string"},
        "SpanName": {"type": "string"},
        "SpanKind": {"type": "integer", "description": "OpenTelemetry SpanKind, 0 = internal."},
        "ServiceName": {"type": "string"},
        "ResourceAttributes": {"type": "object"},
        "SpanAttributes": {
            "type": "object",
            "description": "The span's attributes plus end_time (nanoseconds).",
        },
        "Duration": {"type": "number", "description": "Milliseconds."},
        "StatusCode": {"type": "integer", "description": "0 unset, 1 ok, 2 error."},
        "StatusMessage": {"type": "string"},
    },
    "required": ["Timestamp", "TraceId", "SpanId"],
    "additionalProperties": True,
}


@router.post(
    "/v1/export-traces",
    summary="Ingest span rows from the old TypeScript SDK",
    description="What `@agentmark/sdk` 4.x sends: a JSON array of flat span rows. The spans "
    "are stored exactly as the same spans sent to `POST /v1/traces` would be, in one "
    "transaction, re-sent spans once. A `TraceId` in UUID form is stored as its 32 hex "
    "digits. That SDK's exporter ends its host process on any answer but 2xx, so refused "
    "keys (401, 403) stop the application: give it a key with `trace.ingest`.",
    responses={
        413: {"description": "Body too large (after decompression)."},
        415: {"description": "Content-Type is not application/json."},
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"type": "array", "items": _ROW_SCHEMA}}},
        }
    },
)
async def export_traces(
    *,
    key: VerifiedKey = requires("trace.ingest"),
    request: Request,
    gateway: GatewayDep,
) -> dict[str, Any]:
    media = (request.headers.get("content-type") or "").split(";", 1)[0].strip().lower()
    if media != "application/json":
        raise UnsupportedMediaType(
            f"Unsupported Content-Type '{media or '(none)'}': send span rows as application/json"
        )
    body = await read_body(request, gateway.settings.max_body_bytes)
    spans = legacy.decode_rows(body)
    accepted = await store_for_key(request, gateway, key, spans)
    return {"data": {"success": True, "accepted_spans": accepted}}
