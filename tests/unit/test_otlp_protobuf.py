"""OTLP protobuf requests decode to the same spans as the SDK's JSON for the same spans."""

from __future__ import annotations

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

from agentmark_gateway.errors import BadRequest
from agentmark_gateway.traces.otlp import decode_json, decode_protobuf
from tests.fixtures.otlp import sdk


def _request(*spans: Span) -> bytes:
    message = ExportTraceServiceRequest(
        resource_spans=[ResourceSpans(scope_spans=[ScopeSpans(spans=list(spans))])]
    )
    return message.SerializeToString()


def _span(**fields: object) -> Span:
    values: dict = {
        "trace_id": bytes.fromhex("ab" * 16),
        "span_id": bytes.fromhex("cd" * 8),
        "name": "one",
        "start_time_unix_nano": 1_700_000_000_000_000_000,
        "end_time_unix_nano": 1_700_000_000_500_000_000,
    }
    values.update(fields)
    return Span(**values)


def test_sdk_spans_decode_the_same_from_protobuf_as_from_the_sdks_json():
    with sdk.recording() as exporter:
        sdk.run_agent()
    spans = exporter.get_finished_spans()
    assert len(spans) == 3

    from_json = decode_json(sdk.as_sdk_json(spans))
    from_protobuf = decode_protobuf(sdk.as_protobuf(spans))

    key = lambda s: s.span_id  # noqa: E731
    assert sorted(from_protobuf, key=key) == sorted(from_json, key=key)
    root = next(s for s in from_json if s.parent_span_id is None)
    assert root.attributes["agentmark.session_id"] == "sess-sdk"
    assert root.attributes["agentmark.tags"] == '["sdk","prod"]'
    assert root.events[0]["name"] == "retrieved"


def test_every_any_value_type_decodes_from_protobuf():
    nested = AnyValue(
        kvlist_value={
            "values": [
                KeyValue(
                    key="list",
                    value=AnyValue(
                        array_value=ArrayValue(values=[AnyValue(int_value=1), AnyValue()])
                    ),
                ),
            ]
        }
    )
    span = _span(
        attributes=[
            KeyValue(key="s", value=AnyValue(string_value="text\x00")),
            KeyValue(key="b", value=AnyValue(bool_value=True)),
            KeyValue(key="i", value=AnyValue(int_value=-7)),
            KeyValue(key="d", value=AnyValue(double_value=float("inf"))),
            KeyValue(key="bytes", value=AnyValue(bytes_value=b"hello")),
            KeyValue(key="nested", value=nested),
        ],
        kind=Span.SPAN_KIND_CLIENT,
    )
    decoded = decode_protobuf(_request(span))[0]
    assert decoded.attributes == {
        "s": "text\ufffd",
        "b": True,
        "i": -7,
        "d": "Infinity",
        "bytes": "aGVsbG8=",
        "nested": {"list": [1, None]},
    }
    assert decoded.kind == 3
    assert decoded.trace_id == "ab" * 16


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        pytest.param(
            {"trace_id": b"\x01" * 8}, "traceId: must be 16 bytes, got 8", id="short trace id"
        ),
        pytest.param({"trace_id": b""}, "traceId: must be 16 bytes, got 0", id="no trace id"),
        pytest.param(
            {"trace_id": b"\x00" * 16}, "traceId: must not be all zeros", id="zero trace id"
        ),
        pytest.param({"span_id": b"\x01" * 9}, "spanId: must be 8 bytes, got 9", id="long span id"),
        pytest.param(
            {"parent_span_id": b"\x01\x02"}, "parentSpanId: must be 8 bytes", id="bad parent"
        ),
        pytest.param({"start_time_unix_nano": 0}, "startTimeUnixNano: is required", id="no start"),
        pytest.param(
            {"start_time_unix_nano": 2**64 - 1}, "outside the 64-bit range", id="huge start"
        ),
        pytest.param({"kind": 42}, "kind: must be one of", id="unknown kind"),
    ],
)
def test_a_malformed_protobuf_span_is_refused_with_the_field_named(fields, message):
    with pytest.raises(BadRequest) as caught:
        decode_protobuf(_request(_span(**fields)))
    assert message in caught.value.message


@pytest.mark.parametrize("body", [b"\xff\xff\xff\xff", b"\x0a\x05abc", b'{"resourceSpans": []}'])
def test_bytes_that_are_not_an_export_request_are_refused(body):
    with pytest.raises(BadRequest, match="not a valid protobuf"):
        decode_protobuf(body)


def test_an_empty_protobuf_request_has_no_spans():
    assert decode_protobuf(b"") == []
