"""OTLP/HTTP trace requests, JSON or protobuf, decoded into plain spans.

Validation is strict: a request with one malformed span is refused whole (400
naming the field), so a batch is never half stored. Strings are cleaned of NUL
characters and lone surrogates, which PostgreSQL's text and JSONB reject.
"""

from __future__ import annotations

import base64
import json
import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import orjson
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from agentmark_gateway.errors import BadRequest, UnsupportedMediaType

MAX_INT64 = 2**63 - 1
# Deeper nesting than this in an attribute value is refused, not recursed into.
MAX_VALUE_DEPTH = 32
HEX = frozenset("0123456789abcdef")
# Escapes in a JSON body that decode to characters PostgreSQL cannot store.
_UNSTORABLE_ESCAPE = re.compile(rb"\\u(?:0000|[dD][89a-fA-F])")

SPAN_KINDS = {
    "SPAN_KIND_UNSPECIFIED": 0,
    "SPAN_KIND_INTERNAL": 1,
    "SPAN_KIND_SERVER": 2,
    "SPAN_KIND_CLIENT": 3,
    "SPAN_KIND_PRODUCER": 4,
    "SPAN_KIND_CONSUMER": 5,
}
STATUS_CODES = {"STATUS_CODE_UNSET": 0, "STATUS_CODE_OK": 1, "STATUS_CODE_ERROR": 2}


class Encoding(Enum):
    JSON = "json"
    PROTOBUF = "protobuf"


@dataclass(slots=True)
class OtlpSpan:
    """One span as sent, ids as lowercase hex and attributes as a plain dict."""

    trace_id: str
    span_id: str
    parent_span_id: str | None
    name: str
    kind: int
    start_time_ns: int
    end_time_ns: int
    status_code: int
    status_message: str | None
    attributes: dict[str, Any]
    resource_attributes: dict[str, Any]
    scope_name: str | None
    events: list[dict[str, Any]] = field(default_factory=list)
    links: list[dict[str, Any]] = field(default_factory=list)


def encoding_of(content_type: str | None) -> Encoding:
    """The body format named by ``Content-Type``; 415 for anything else."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media == "application/json":
        return Encoding.JSON
    if media in ("application/x-protobuf", "application/protobuf"):
        return Encoding.PROTOBUF
    raise UnsupportedMediaType(
        f"Unsupported Content-Type '{media or '(none)'}': send OTLP as application/json "
        "or application/x-protobuf"
    )


def decode(body: bytes, encoding: Encoding) -> list[OtlpSpan]:
    if encoding is Encoding.PROTOBUF:
        return decode_protobuf(body)
    return decode_json(body)


class _Invalid(Exception):
    """A problem at a path relative to where it is caught; each level prefixes its part.

    Paths are built only on the way out of a failure, never for valid spans.
    """

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(problem)
        self.path = path
        self.problem = problem

    def under(self, prefix: str) -> None:
        joint = "" if not self.path or self.path.startswith("[") else "."
        self.path = f"{prefix}{joint}{self.path}"


def _refused(invalid: _Invalid) -> BadRequest:
    return BadRequest(f"Invalid OTLP request: {invalid.path}: {invalid.problem}")


# --- strings ---------------------------------------------------------------------------


def _clean_nul(text: str) -> str:
    return text.replace("\x00", "\ufffd") if "\x00" in text else text


def _clean_all(text: str) -> str:
    text = _clean_nul(text)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "replace").decode("utf-8")
    return text


# --- JSON ------------------------------------------------------------------------------


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def decode_json(body: bytes) -> list[OtlpSpan]:
    document = _parse_json(body)
    if not isinstance(document, dict):
        raise BadRequest("Invalid OTLP request: body must be a JSON object with resourceSpans")
    # JSON strings carry NUL or a lone surrogate only as a \u escape, so a body
    # without one needs no per-string cleaning (the byte search is far cheaper than
    # the regular expression, which runs only when some \u escape is there).
    unstorable = b"\\u" in body and _UNSTORABLE_ESCAPE.search(body) is not None
    try:
        return _JsonDecoder(_clean_all if unstorable else None).request(document)
    except _Invalid as invalid:
        raise _refused(invalid) from None


def _parse_json(body: bytes) -> Any:
    """orjson for speed; the stdlib parser for what orjson refuses, and for its messages.

    The stdlib parser accepts lone surrogate escapes (cleaned later) and a UTF-8
    byte order mark, which orjson refuses; for a body neither takes, its error
    message is the one clients have always seen.
    """
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        pass
    try:
        return json.loads(body, parse_constant=_reject_constant)
    except RecursionError as exc:
        raise BadRequest("Invalid OTLP request: JSON nested too deeply") from exc
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError alike
        raise BadRequest(f"Invalid OTLP request: body is not valid JSON ({exc})") from exc


class _JsonDecoder:
    """OTLP's JSON mapping: hex ids, int64 as strings or numbers, camelCase names."""

    def __init__(self, clean: Callable[[str], str] | None) -> None:
        # None when the body cannot hold an unstorable character (see decode_json).
        self.clean = clean
        # The last trace id seen, as sent and as checked (nothing sent equals the start).
        self._trace_id: tuple[Any, str] = (object(), "")

    def text(self, value: str) -> str:
        return value if self.clean is None else self.clean(value)

    def request(self, document: dict[str, Any]) -> list[OtlpSpan]:
        spans: list[OtlpSpan] = []
        for r, resource_spans in enumerate(_list(document, "resourceSpans")):
            try:
                spans.extend(self.resource_spans(resource_spans))
            except _Invalid as invalid:
                invalid.under(f"resourceSpans[{r}]")
                raise
        return spans

    def resource_spans(self, raw: Any) -> list[OtlpSpan]:
        _object(raw, "")
        resource = raw.get("resource") or {}
        _object(resource, "resource")
        try:
            resource_attributes = self.attributes(resource.get("attributes"))
        except _Invalid as invalid:
            invalid.under("resource")
            raise
        key = "scopeSpans"
        if raw.get(key) is None and "instrumentationLibrarySpans" in raw:
            key = "instrumentationLibrarySpans"  # the pre-1.0 name, still sent by old SDKs
        spans: list[OtlpSpan] = []
        for s, scope_spans in enumerate(_list(raw, key)):
            try:
                _object(scope_spans, "")
                scope = scope_spans.get("scope") or scope_spans.get("instrumentationLibrary") or {}
                _object(scope, "scope")
                scope_name = self.optional_str(scope.get("name"), "scope.name")
                for i, span in enumerate(_list(scope_spans, "spans")):
                    try:
                        spans.append(self.span(span, resource_attributes, scope_name))
                    except _Invalid as invalid:
                        invalid.under(f"spans[{i}]")
                        raise
            except _Invalid as invalid:
                invalid.under(f"{key}[{s}]")
                raise
        return spans

    def span(
        self, raw: Any, resource_attributes: dict[str, Any], scope_name: str | None
    ) -> OtlpSpan:
        _object(raw, "")
        start = _time(raw.get("startTimeUnixNano"), "startTimeUnixNano", required=True)
        end = _time(raw.get("endTimeUnixNano"), "endTimeUnixNano", required=False)
        status = raw.get("status") or {}
        _object(status, "status")
        parent = raw.get("parentSpanId")
        return OtlpSpan(
            trace_id=self.trace_id(raw.get("traceId")),
            span_id=_hex_id(raw.get("spanId"), 16, "spanId"),
            parent_span_id=_hex_id(parent, 16, "parentSpanId") if parent else None,
            name=self.optional_str(raw.get("name"), "name") or "",
            kind=_enum(raw.get("kind"), SPAN_KINDS, "kind"),
            start_time_ns=start,
            end_time_ns=max(end, start),
            status_code=_enum(status.get("code"), STATUS_CODES, "status.code"),
            status_message=self.optional_str(status.get("message"), "status.message") or None,
            attributes=self.attributes(raw.get("attributes")),
            resource_attributes=resource_attributes,
            scope_name=scope_name,
            # Most spans have neither: skip the calls (a present non-list is still refused).
            events=self.each(raw, "events", self.event) if "events" in raw else [],
            links=self.each(raw, "links", self.link) if "links" in raw else [],
        )

    def trace_id(self, value: Any) -> str:
        """A span's trace id; the spans of a batch mostly share one, checked once."""
        if value != self._trace_id[0]:
            self._trace_id = (value, _hex_id(value, 32, "traceId"))
        return self._trace_id[1]

    def each(
        self, raw: dict[str, Any], key: str, read: Callable[[Any], dict[str, Any]]
    ) -> list[dict[str, Any]]:
        items = _list(raw, key)
        if not items:
            return []
        out = []
        for n, item in enumerate(items):
            try:
                out.append(read(item))
            except _Invalid as invalid:
                invalid.under(f"{key}[{n}]")
                raise
        return out

    def event(self, raw: Any) -> dict[str, Any]:
        _object(raw, "")
        return {
            "name": self.optional_str(raw.get("name"), "name") or "",
            "time_unix_nano": _time(raw.get("timeUnixNano"), "timeUnixNano", required=False),
            "attributes": self.attributes(raw.get("attributes")),
        }

    def link(self, raw: Any) -> dict[str, Any]:
        _object(raw, "")
        return {
            "trace_id": _hex_id(raw.get("traceId"), 32, "traceId"),
            "span_id": _hex_id(raw.get("spanId"), 16, "spanId"),
            "trace_state": self.optional_str(raw.get("traceState"), "traceState") or None,
            "attributes": self.attributes(raw.get("attributes")),
        }

    def attributes(self, raw: Any) -> dict[str, Any]:
        if raw is None:
            return {}
        if not isinstance(raw, list):
            raise _Invalid("attributes", "must be a list of {key, value} objects")
        return self.pairs(raw, "attributes", 0)

    def pairs(self, raw: list[Any], path: str, depth: int) -> dict[str, Any]:
        """OTLP KeyValue lists (attributes, kvlistValue) as a dict; the last of a key wins."""
        out: dict[str, Any] = {}
        clean = self.clean
        for n, item in enumerate(raw):
            if type(item) is not dict or type(key := item.get("key")) is not str:
                raise _Invalid(f"{path}[{n}]", "must be an object with a string key")
            if clean is not None:
                key = clean(key)
            value = item.get("value")
            # Most attributes are strings: take them here, without the general walk.
            if type(value) is dict and type(text := value.get("stringValue")) is str:
                out[key] = text if clean is None else clean(text)
                continue
            try:
                out[key] = self.value(value, depth)
            except _Invalid as invalid:
                invalid.under(f"{path}[{key!r}]")
                raise
        return out

    def value(self, raw: Any, depth: int) -> Any:
        if raw is None:
            return None
        if type(raw) is not dict:
            raise _Invalid("", "must be an AnyValue object")
        if "stringValue" in raw:
            text = raw["stringValue"]
            if type(text) is not str:
                raise _Invalid("", "stringValue must be a string")
            return self.text(text)
        if not raw:
            return None
        if depth >= MAX_VALUE_DEPTH:
            raise _Invalid("", f"values nest deeper than {MAX_VALUE_DEPTH} levels")
        if "intValue" in raw:
            return _int64(raw["intValue"], "")
        if "boolValue" in raw:
            if type(raw["boolValue"]) is not bool:
                raise _Invalid("", "boolValue must be true or false")
            return raw["boolValue"]
        if "doubleValue" in raw:
            return _double(raw["doubleValue"], "")
        if "arrayValue" in raw:
            array = raw["arrayValue"] or {}
            _object(array, "arrayValue")
            out = []
            for n, item in enumerate(_list(array, "values")):
                try:
                    out.append(self.value(item, depth + 1))
                except _Invalid as invalid:
                    invalid.under(f"[{n}]")
                    raise
            return out
        if "kvlistValue" in raw:
            kvlist = raw["kvlistValue"] or {}
            _object(kvlist, "kvlistValue")
            return self.pairs(_list(kvlist, "values"), "", depth + 1)
        if "bytesValue" in raw:
            if type(raw["bytesValue"]) is not str:
                raise _Invalid("", "bytesValue must be a base64 string")
            return raw["bytesValue"]
        raise _Invalid("", f"unknown AnyValue field {sorted(raw)[0]!r}")

    def optional_str(self, value: Any, path: str) -> str | None:
        if value is None:
            return None
        if type(value) is not str:
            raise _Invalid(path, "must be a string")
        return self.text(value)


def _list(parent: dict[str, Any], key: str) -> list[Any]:
    value = parent.get(key)
    if value is None:
        return []
    if type(value) is not list:
        raise _Invalid(key, "must be a list")
    return value


def _object(value: Any, path: str) -> None:
    if type(value) is not dict:
        raise _Invalid(path, "must be an object")


def _hex_id(value: Any, length: int, path: str) -> str:
    if type(value) is not str or not value:
        raise _Invalid(path, f"is required: {length} hex characters")
    if len(value) != length:
        raise _Invalid(path, f"must be {length} hex characters, got {len(value)}")
    try:
        raw = bytes.fromhex(value)
    except ValueError:
        raw = b""
    # fromhex skips whitespace, so a full-length result means only hex digits were sent.
    if len(raw) * 2 != length:
        raise _Invalid(path, f"must be {length} hex characters, got non-hex {value!r}")
    if not any(raw):
        raise _Invalid(path, "must not be all zeros")
    return raw.hex()


def _int64(value: Any, path: str) -> int:
    if type(value) is int:
        number = value
    elif type(value) is str and value.isascii() and value.isdigit() and len(value) <= 20:
        number = int(value)
    elif type(value) is str and re.fullmatch(r"[+-]?\d{1,20}", value):
        number = int(value)
    elif type(value) is float and value.is_integer() and abs(value) >= 2**63:
        # orjson reads a JSON integer past 64 bits as a float: say what is wrong with it.
        raise _Invalid(path, "is outside the 64-bit range")
    else:
        raise _Invalid(path, "must be an integer (a number or a decimal string)")
    if not -(2**63) <= number <= MAX_INT64:
        raise _Invalid(path, "is outside the 64-bit range")
    return number


def _double(value: Any, path: str) -> float | str:
    if type(value) is int or type(value) is float:
        number = float(value)
    elif type(value) is str and value in ("NaN", "Infinity", "-Infinity"):
        return value
    else:
        raise _Invalid(path, "doubleValue must be a number")
    # JSONB has no NaN or infinity: keep them in OTLP's own spelling.
    if math.isnan(number):
        return "NaN"
    if math.isinf(number):
        return "Infinity" if number > 0 else "-Infinity"
    return number


def _time(value: Any, path: str, *, required: bool) -> int:
    if value is None or value == "" or value == 0 or value == "0":
        if required:
            raise _Invalid(path, "is required (nanoseconds since the epoch)")
        return 0
    number = _int64(value, path)
    if number < 0:
        raise _Invalid(path, "must not be negative")
    return number


def _enum(value: Any, names: dict[str, int], path: str) -> int:
    if value is None:
        return 0
    if type(value) is int and value in names.values():
        return value
    if type(value) is str and value in names:
        return names[value]
    raise _Invalid(path, f"must be one of {sorted(names.values())} or {sorted(names)}")


# --- protobuf --------------------------------------------------------------------------


def decode_protobuf(body: bytes) -> list[OtlpSpan]:
    try:
        request = ExportTraceServiceRequest.FromString(body)
    except (DecodeError, RecursionError) as exc:
        raise BadRequest(
            "Invalid OTLP request: body is not a valid protobuf ExportTraceServiceRequest"
        ) from exc
    spans: list[OtlpSpan] = []
    for r, resource_spans in enumerate(request.resource_spans):
        try:
            try:
                resource_attributes = _pb_pairs(resource_spans.resource.attributes, "attributes", 0)
            except _Invalid as invalid:
                invalid.under("resource")
                raise
            for s, scope_spans in enumerate(resource_spans.scope_spans):
                scope_name = _clean_nul(scope_spans.scope.name) or None
                for i, raw in enumerate(scope_spans.spans):
                    try:
                        spans.append(_pb_span(raw, resource_attributes, scope_name))
                    except _Invalid as invalid:
                        invalid.under(f"scopeSpans[{s}].spans[{i}]")
                        raise
        except _Invalid as invalid:
            invalid.under(f"resourceSpans[{r}]")
            raise _refused(invalid) from None
    return spans


def _pb_span(raw: Any, resource_attributes: dict[str, Any], scope_name: str | None) -> OtlpSpan:
    start = raw.start_time_unix_nano
    if start == 0:
        raise _Invalid("startTimeUnixNano", "is required (nanoseconds since the epoch)")
    if start > MAX_INT64:
        raise _Invalid("startTimeUnixNano", "is outside the 64-bit range")
    if raw.end_time_unix_nano > MAX_INT64:
        raise _Invalid("endTimeUnixNano", "is outside the 64-bit range")
    if raw.kind not in SPAN_KINDS.values():
        raise _Invalid("kind", f"must be one of {sorted(SPAN_KINDS.values())}")
    if raw.status.code not in STATUS_CODES.values():
        raise _Invalid("status.code", f"must be one of {sorted(STATUS_CODES.values())}")
    return OtlpSpan(
        trace_id=_pb_id(raw.trace_id, 16, "traceId"),
        span_id=_pb_id(raw.span_id, 8, "spanId"),
        parent_span_id=_pb_id(raw.parent_span_id, 8, "parentSpanId")
        if raw.parent_span_id
        else None,
        name=_clean_nul(raw.name),
        kind=raw.kind,
        start_time_ns=start,
        end_time_ns=max(raw.end_time_unix_nano, start),
        status_code=raw.status.code,
        status_message=_clean_nul(raw.status.message) or None,
        attributes=_pb_pairs(raw.attributes, "attributes", 0),
        resource_attributes=resource_attributes,
        scope_name=scope_name,
        events=[_pb_event(event, n) for n, event in enumerate(raw.events)],
        links=[_pb_link(link, n) for n, link in enumerate(raw.links)],
    )


def _pb_event(event: Any, n: int) -> dict[str, Any]:
    try:
        return {
            "name": _clean_nul(event.name),
            "time_unix_nano": min(event.time_unix_nano, MAX_INT64),
            "attributes": _pb_pairs(event.attributes, "attributes", 0),
        }
    except _Invalid as invalid:
        invalid.under(f"events[{n}]")
        raise


def _pb_link(link: Any, n: int) -> dict[str, Any]:
    try:
        return {
            "trace_id": _pb_id(link.trace_id, 16, "traceId"),
            "span_id": _pb_id(link.span_id, 8, "spanId"),
            "trace_state": _clean_nul(link.trace_state) or None,
            "attributes": _pb_pairs(link.attributes, "attributes", 0),
        }
    except _Invalid as invalid:
        invalid.under(f"links[{n}]")
        raise


def _pb_id(value: bytes, size: int, path: str) -> str:
    if len(value) != size:
        raise _Invalid(path, f"must be {size} bytes, got {len(value)}")
    if not any(value):
        raise _Invalid(path, "must not be all zeros")
    return value.hex()


def _pb_pairs(items: Iterable[KeyValue], path: str, depth: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        key = _clean_nul(item.key)
        try:
            out[key] = _pb_value(item.value, depth)
        except _Invalid as invalid:
            invalid.under(f"{path}[{key!r}]")
            raise
    return out


def _pb_value(value: AnyValue, depth: int) -> Any:
    which = value.WhichOneof("value")
    if which == "string_value":
        return _clean_nul(value.string_value)
    if which is None:
        return None
    if depth >= MAX_VALUE_DEPTH:
        raise _Invalid("", f"values nest deeper than {MAX_VALUE_DEPTH} levels")
    if which == "int_value":
        return value.int_value
    if which == "bool_value":
        return value.bool_value
    if which == "double_value":
        return _double(value.double_value, "")
    if which == "array_value":
        out = []
        for n, item in enumerate(value.array_value.values):
            try:
                out.append(_pb_value(item, depth + 1))
            except _Invalid as invalid:
                invalid.under(f"[{n}]")
                raise
        return out
    if which == "kvlist_value":
        return _pb_pairs(value.kvlist_value.values, "", depth + 1)
    return base64.b64encode(value.bytes_value).decode("ascii")
