"""The old TypeScript SDK's flat span rows (``POST /v1/export-traces``) as plain spans.

``@agentmark/sdk`` 4.x posts a JSON array with one row a span, keyed by the
column names of AgentMark's old span table. Each row becomes the ``OtlpSpan``
that the same span sent over OTLP decodes to, so it is stored by the same
ingest path, with the same derived columns and the same idempotence:

- ``Timestamp`` is the start in nanoseconds (a JSON number, rounded by the
  sender's float arithmetic); the end is ``SpanAttributes.end_time`` (also
  nanoseconds), which the exporter adds to the attributes and which is taken
  out again. Without it, the end is the start plus ``Duration`` (milliseconds).
- ``SpanKind`` is OpenTelemetry's API enum (0 internal ... 4 consumer), one
  less than OTLP's numbering.
- ``TraceId`` is 32 hex characters, or a UUID (the old dataset runner made
  trace ids with ``crypto.randomUUID()``): its 32 hex digits without the dashes
  are the trace id, so every row of that trace, and its scores' ``resourceId``
  written the same way, meet under one id.
- ``ServiceName`` is the resource's ``service.name`` when the resource
  attributes do not already say it.

Validation is as strict as for OTLP: one malformed row refuses the request
(400 naming the row and field), so a batch is never half stored.
"""

from __future__ import annotations

import json
import math
from typing import Any

import orjson

from agentmark_gateway.errors import BadRequest
from agentmark_gateway.traces.otlp import MAX_INT64, MAX_VALUE_DEPTH, OtlpSpan
from agentmark_gateway.traces.otlp import _hex_id as otlp_hex_id
from agentmark_gateway.traces.otlp import _Invalid as OtlpInvalid

# OpenTelemetry API SpanKind (what the old exporter sends) -> OTLP's numbering.
_KINDS = {0: 1, 1: 2, 2: 3, 3: 4, 4: 5}
_NS_PER_MS = 1_000_000
END_TIME = "end_time"


class _Invalid(Exception):
    def __init__(self, field: str, problem: str) -> None:
        super().__init__(problem)
        self.field = field
        self.problem = problem


def decode_rows(body: bytes) -> list[OtlpSpan]:
    """The spans of an export-traces body; 400 naming the first malformed row and field."""
    rows = _parse(body)
    if not isinstance(rows, list):
        raise BadRequest("Invalid span rows: body must be a JSON array of span rows")
    spans = []
    for index, row in enumerate(rows):
        try:
            spans.append(_span(row))
        except _Invalid as invalid:
            where = f"[{index}].{invalid.field}" if invalid.field else f"[{index}]"
            raise BadRequest(f"Invalid span rows: {where}: {invalid.problem}") from None
    return spans


def _parse(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        pass
    # The stdlib parser accepts what orjson refuses but is still JSON (a byte order
    # mark, lone surrogate escapes, integers past 64 bits), and names the problem.
    try:
        return json.loads(body, parse_constant=_no_constant)
    except RecursionError:
        raise BadRequest("Invalid span rows: JSON nested too deeply") from None
    except ValueError as exc:
        raise BadRequest(f"Invalid span rows: body is not valid JSON ({exc})") from None


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _span(row: Any) -> OtlpSpan:
    if not isinstance(row, dict):
        raise _Invalid("", "must be an object")
    attributes = _object(row.get("SpanAttributes"), "SpanAttributes")
    resource = _object(row.get("ResourceAttributes"), "ResourceAttributes")
    service = _optional_text(row.get("ServiceName"), "ServiceName")
    if service and "service.name" not in resource:
        resource["service.name"] = service
    start = _nanoseconds(row.get("Timestamp"), "Timestamp", required=True)
    end = _end(attributes.pop(END_TIME, None), row.get("Duration"), start)
    parent = row.get("ParentSpanId")
    return OtlpSpan(
        trace_id=trace_id(row.get("TraceId"), "TraceId"),
        span_id=_hex(row.get("SpanId"), 16, "SpanId"),
        parent_span_id=_hex(parent, 16, "ParentSpanId") if parent else None,
        name=_optional_text(row.get("SpanName"), "SpanName") or "",
        kind=_kind(row.get("SpanKind")),
        start_time_ns=start,
        end_time_ns=max(end, start),
        status_code=_status(row.get("StatusCode")),
        status_message=_optional_text(row.get("StatusMessage"), "StatusMessage") or None,
        attributes=attributes,
        resource_attributes=resource,
        # The rows do not carry the instrumentation scope.
        scope_name=None,
        events=_events(row),
        links=_links(row),
    )


def trace_id(value: Any, field: str) -> str:
    """32 hex characters, or a UUID (``8-4-4-4-12``) whose hex digits are the id."""
    if isinstance(value, str) and len(value) == 36 and value.count("-") == 4:
        groups = value.split("-")
        if [len(group) for group in groups] == [8, 4, 4, 4, 12]:
            value = "".join(groups)
    return _hex(value, 32, field)


def _hex(value: Any, length: int, field: str) -> str:
    # The OTLP decoder's rule for hex ids, so both routes accept the same ids.
    try:
        return otlp_hex_id(value, length, field)
    except OtlpInvalid as invalid:
        raise _Invalid(field, invalid.problem) from None


def _end(end_time: Any, duration: Any, start: int) -> int:
    if end_time is not None:
        return _nanoseconds(end_time, f"SpanAttributes.{END_TIME}", required=False)
    if duration is None:
        return start
    if not _is_number(duration) or duration < 0:
        raise _Invalid("Duration", "must be a non-negative number of milliseconds")
    return min(start + int(duration * _NS_PER_MS), MAX_INT64)


def _nanoseconds(value: Any, field: str, *, required: bool) -> int:
    if not required and (value is None or value == 0):
        return 0
    # A float is what the sender's arithmetic gives (1.79e18 has no exact integer).
    if not _is_number(value) or not 0 < value <= MAX_INT64:
        raise _Invalid(field, "must be a positive number of nanoseconds since the epoch")
    return int(value)


def _is_number(value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return math.isfinite(value)


def _kind(value: Any) -> int:
    if value is None:
        return 0
    if isinstance(value, bool) or value not in _KINDS:
        raise _Invalid("SpanKind", f"must be one of {sorted(_KINDS)} (OpenTelemetry's SpanKind)")
    return _KINDS[value]


def _status(value: Any) -> int:
    if value is None:
        return 0
    if isinstance(value, bool) or value not in (0, 1, 2):
        raise _Invalid("StatusCode", "must be 0 (unset), 1 (ok) or 2 (error)")
    return int(value)


def _optional_text(value: Any, field: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise _Invalid(field, "must be a string")
    return _clean(value)


def _object(value: Any, field: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _Invalid(field, "must be an object")
    return {_clean(key): _value(item, f"{field}.{key}", 1) for key, item in value.items()}


def _value(value: Any, field: str, depth: int) -> Any:
    """An attribute value made storable: text cleaned, numbers finite and 64-bit."""
    if isinstance(value, str):
        return _clean(value)
    if isinstance(value, bool) or value is None or isinstance(value, float):
        return value
    if isinstance(value, int):
        if not -(2**63) <= value <= MAX_INT64:
            raise _Invalid(field, "is outside the 64-bit range")
        return value
    if depth >= MAX_VALUE_DEPTH:
        raise _Invalid(field, f"values nest deeper than {MAX_VALUE_DEPTH} levels")
    if isinstance(value, list):
        return [_value(item, field, depth + 1) for item in value]
    return {_clean(key): _value(item, field, depth + 1) for key, item in value.items()}


def _clean(text: str) -> str:
    """PostgreSQL stores neither NUL nor lone surrogates: they become U+FFFD, as for OTLP."""
    text = text.replace("\x00", "\ufffd")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "replace").decode("utf-8")
    return text


def _columns(row: dict[str, Any], prefix: str, names: tuple[str, ...]) -> list[tuple[Any, ...]]:
    """Parallel arrays (``Events.Name``, ``Events.Timestamp``, ...) zipped into tuples."""
    columns = []
    for name in names:
        field = f"{prefix}.{name}"
        column = row.get(field)
        if column is None:
            column = []
        if not isinstance(column, list):
            raise _Invalid(field, "must be an array")
        columns.append(column)
    length = max(len(column) for column in columns)
    if any(len(column) not in (0, length) for column in columns):
        raise _Invalid(prefix, f"arrays {', '.join(names)} must have the same length")
    return list(zip(*(column or [None] * length for column in columns), strict=True))


def _events(row: dict[str, Any]) -> list[dict[str, Any]]:
    events = []
    for n, (time, name, attributes) in enumerate(
        _columns(row, "Events", ("Timestamp", "Name", "Attributes"))
    ):
        events.append(
            {
                "name": _optional_text(name, f"Events.Name[{n}]") or "",
                "time_unix_nano": _nanoseconds(time, f"Events.Timestamp[{n}]", required=False),
                "attributes": _object(attributes, f"Events.Attributes[{n}]"),
            }
        )
    return events


def _links(row: dict[str, Any]) -> list[dict[str, Any]]:
    links = []
    for n, (trace, span, state, attributes) in enumerate(
        _columns(row, "Links", ("TraceId", "SpanId", "TraceState", "Attributes"))
    ):
        links.append(
            {
                "trace_id": trace_id(trace, f"Links.TraceId[{n}]"),
                "span_id": _hex(span, 16, f"Links.SpanId[{n}]"),
                "trace_state": _optional_text(state, f"Links.TraceState[{n}]") or None,
                "attributes": _object(attributes, f"Links.Attributes[{n}]"),
            }
        )
    return links
