"""OTLP JSON requests decode into spans, or are refused whole with a 400 naming the field."""

from __future__ import annotations

import json

import pytest

from agentmark_gateway.errors import BadRequest, UnsupportedMediaType
from agentmark_gateway.traces.otlp import Encoding, decode_json, encoding_of
from tests.fixtures.otlp import payloads


def _body(document: object) -> bytes:
    return json.dumps(document).encode()


def _one_span(**overrides: object) -> dict:
    span = payloads.span("ab" * 16, "cd" * 8, name="one", start_ns=1_700_000_000_000_000_000)
    span.update(overrides)
    return payloads.request([span])


def test_the_kitchen_sink_decodes_every_field_and_value_type():
    spans = decode_json(_body(payloads.load("kitchen_sink.json")))

    assert [s.span_id for s in spans] == [
        "b7ad6b7169203331",
        "00f067aa0ba902b7",
        "00f067aa0ba902b8",
    ]
    root, chat, tool = spans
    assert root.trace_id == "0af7651916cd43dd8448eb211c80319c"  # uppercase hex is lowered
    assert root.kind == 2 and root.status_code == 1  # enum names are accepted
    assert root.start_time_ns == 1735722000000000000  # a number as well as a string
    assert root.end_time_ns == 1735722000250000000
    assert root.scope_name == "kitchen-sink"
    assert root.resource_attributes["service.name"] == "checkout-worker"
    attrs = root.attributes
    assert attrs["flag"] is True
    assert attrs["ratio"] == 0.25
    assert attrs["not_a_number"] == "NaN"
    assert attrs["blob"] == "aGVsbG8="
    assert attrs["agentmark.metadata.attempt"] == 2
    assert attrs["agentmark.tags"] == ["beta", "eu"]
    assert attrs["nested"] == {"list": [1, "two", None], "empty": None}
    assert root.events == [
        {
            "name": "cache-miss",
            "time_unix_nano": 1735722000100000000,
            "attributes": {"key": "lisbon"},
        }
    ]
    assert chat.parent_span_id == root.span_id
    assert chat.status_code == 2 and chat.status_message == "rate limited, retried"
    assert chat.links[0]["trace_id"] == "5b8efff798038103d269b633813fc60c"
    assert tool.kind == 0 and tool.status_code == 0  # absent enums are the zero value


def test_an_empty_request_has_no_spans():
    assert decode_json(b"{}") == []
    assert decode_json(b'{"resourceSpans": []}') == []


def test_the_pre_1_0_instrumentation_library_spans_name_is_read():
    document = payloads.request([payloads.span("ab" * 16, "cd" * 8, start_ns=5)])
    resource = document["resourceSpans"][0]
    resource["instrumentationLibrarySpans"] = resource.pop("scopeSpans")
    assert [s.span_id for s in decode_json(_body(document))] == ["cd" * 8]


def test_an_end_before_the_start_is_clamped_to_the_start():
    spans = decode_json(_body(_one_span(endTimeUnixNano="1")))
    assert spans[0].end_time_ns == spans[0].start_time_ns


def test_nul_characters_and_lone_surrogates_are_replaced_so_postgresql_can_store_them():
    document = _one_span(name="a\u0000b")
    document["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["attributes"] = [
        {"key": "k\u0000", "value": {"stringValue": "bad \ud800 surrogate"}}
    ]
    span = decode_json(_body(document))[0]
    assert span.name == "a\ufffdb"
    assert span.attributes == {"k\ufffd": "bad ? surrogate"}
    json.dumps(span.attributes).encode("utf-8")


BAD_SPANS = [
    pytest.param(
        {"traceId": "ab" * 15}, "traceId: must be 32 hex characters, got 30", id="short trace id"
    ),
    pytest.param(
        {"traceId": "zz" * 16},
        "traceId: must be 32 hex characters, got non-hex",
        id="non-hex trace id",
    ),
    pytest.param({"traceId": "0" * 32}, "traceId: must not be all zeros", id="zero trace id"),
    pytest.param({"traceId": 12}, "traceId: is required", id="numeric trace id"),
    pytest.param({"spanId": None}, "spanId: is required", id="missing span id"),
    pytest.param(
        {"spanId": "cd" * 9}, "spanId: must be 16 hex characters, got 18", id="long span id"
    ),
    pytest.param(
        {"parentSpanId": "abc"}, "parentSpanId: must be 16 hex characters", id="bad parent"
    ),
    pytest.param({"startTimeUnixNano": None}, "startTimeUnixNano: is required", id="no start"),
    pytest.param(
        {"startTimeUnixNano": "soon"}, "startTimeUnixNano: must be an integer", id="text start"
    ),
    pytest.param(
        {"startTimeUnixNano": "-5"}, "startTimeUnixNano: must not be negative", id="negative"
    ),
    pytest.param({"startTimeUnixNano": str(2**64)}, "outside the 64-bit range", id="huge start"),
    pytest.param({"kind": 9}, "kind: must be one of", id="unknown kind"),
    pytest.param({"status": {"code": "BOGUS"}}, "status.code: must be one of", id="unknown status"),
    pytest.param({"status": "ok"}, "status: must be an object", id="status not object"),
    pytest.param({"name": ["x"]}, "name: must be a string", id="name not string"),
    pytest.param({"attributes": {"a": 1}}, "attributes: must be a list", id="attributes as map"),
    pytest.param(
        {"attributes": [{"value": {}}]},
        "attributes[0]: must be an object with a string key",
        id="no key",
    ),
    pytest.param(
        {"attributes": [{"key": "a", "value": 5}]}, "must be an AnyValue object", id="bare value"
    ),
    pytest.param(
        {"attributes": [{"key": "a", "value": {"weird": 1}}]},
        "unknown AnyValue field 'weird'",
        id="unknown type",
    ),
    pytest.param(
        {"attributes": [{"key": "a", "value": {"intValue": "12abc"}}]},
        "must be an integer",
        id="bad int",
    ),
    pytest.param(
        {"attributes": [{"key": "a", "value": {"stringValue": 5}}]},
        "stringValue must be a string",
        id="bad string",
    ),
    pytest.param(
        {"attributes": [{"key": "a", "value": {"arrayValue": {"values": 3}}}]},
        "must be a list",
        id="bad array",
    ),
    pytest.param(
        {"events": [{"name": "e", "timeUnixNano": "x"}]}, "events[0].timeUnixNano", id="bad event"
    ),
    pytest.param(
        {"links": [{"traceId": "ab", "spanId": "cd" * 8}]}, "links[0].traceId", id="bad link"
    ),
]


@pytest.mark.parametrize(("override", "message"), BAD_SPANS)
def test_a_malformed_span_is_refused_with_the_field_named(override, message):
    with pytest.raises(BadRequest) as caught:
        decode_json(_body(_one_span(**override)))
    assert caught.value.status_code == 400
    assert message in caught.value.message
    assert "resourceSpans[0].scopeSpans[0].spans[0]" in caught.value.message


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"not json", id="garbage"),
        pytest.param(b'{"resourceSpans": [', id="truncated"),
        pytest.param(b"[]", id="array"),
        pytest.param(b'{"resourceSpans": {}}', id="resourceSpans not a list"),
        pytest.param(b'{"resourceSpans": [{"scopeSpans": [{"spans": [NaN]}]}]}', id="NaN literal"),
        pytest.param(b"\xff\xfe\x00", id="not utf-8"),
        pytest.param(b"[" * 100_000 + b"]" * 100_000, id="nested too deeply for the parser"),
    ],
)
def test_a_body_that_is_not_an_otlp_json_object_is_refused(body):
    with pytest.raises(BadRequest):
        decode_json(body)


def test_attribute_values_nested_past_the_limit_are_refused_not_recursed():
    value: dict = {"stringValue": "leaf"}
    for _ in range(40):
        value = {"arrayValue": {"values": [value]}}
    document = _one_span(attributes=[{"key": "deep", "value": value}])
    with pytest.raises(BadRequest, match="nest deeper"):
        decode_json(_body(document))


@pytest.mark.parametrize(
    ("content_type", "encoding"),
    [
        ("application/json", Encoding.JSON),
        ("application/json; charset=utf-8", Encoding.JSON),
        ("Application/JSON", Encoding.JSON),
        ("application/x-protobuf", Encoding.PROTOBUF),
        ("application/protobuf", Encoding.PROTOBUF),
    ],
)
def test_json_and_protobuf_content_types_are_recognised(content_type, encoding):
    assert encoding_of(content_type) is encoding


@pytest.mark.parametrize(
    "content_type", [None, "", "text/plain", "application/xml", "multipart/form-data"]
)
def test_any_other_content_type_is_unsupported(content_type):
    with pytest.raises(UnsupportedMediaType):
        encoding_of(content_type)
