"""Property tests on the parsers hostile input reaches first: key values, the
Authorization header, OTLP JSON and protobuf, and query filters. For any input
they answer a value or their own 4xx error, never another exception."""

from __future__ import annotations

import json
import string
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from pydantic import TypeAdapter, ValidationError

from agentmark_gateway.api_keys import keygen
from agentmark_gateway.api_keys.authenticate import parse_authorization
from agentmark_gateway.errors import BadRequest, Unauthorized
from agentmark_gateway.moments import DayOrMoment
from agentmark_gateway.traces import otlp
from agentmark_gateway.traces.filters import SESSION_SORTS, TRACE_SORTS, Sort
from agentmark_gateway.traces.params import date_range, parse_instant, parse_sort, parse_status
from tests.security.support import asgi_request, assert_envelope

# Drawn by hypothesis (not from `secrets`), so every example can be replayed.
KEYS = st.text(alphabet=keygen.ALPHABET, min_size=32, max_size=32).map(
    lambda random_part: keygen.PREFIX + random_part + keygen.checksum(random_part)
)
WHITESPACE = st.text(alphabet=" \t", max_size=5)
# Text an HTTP client can put in a URL (lone surrogates cannot be encoded at all).
URL_TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=40)

# --- keys and the Authorization header ---------------------------------------------------


@given(st.text(max_size=120))
@example(keygen.PREFIX + "0" * 38)
@example(keygen.PREFIX + "é" * 38)
def test_any_text_is_judged_a_key_or_not_without_error(text):
    assert keygen.is_well_formed(text) in (True, False)


@given(KEYS, st.data())
def test_any_single_character_change_to_a_key_is_caught_by_its_checksum(key, data):
    position = data.draw(st.integers(len(keygen.PREFIX), keygen.KEY_LENGTH - 1))
    other = data.draw(st.sampled_from(keygen.ALPHABET).filter(lambda c: c != key[position]))
    assert not keygen.is_well_formed(key[:position] + other + key[position + 1 :])


@given(KEYS, st.data())
def test_swapping_two_neighbours_in_a_key_is_caught(key, data):
    position = data.draw(st.integers(len(keygen.PREFIX), keygen.KEY_LENGTH - 2))
    assume(key[position] != key[position + 1])
    swapped = key[:position] + key[position + 1] + key[position] + key[position + 2 :]
    assert not keygen.is_well_formed(swapped)


@given(KEYS)
def test_the_display_form_never_holds_the_secret_part(key):
    shown = keygen.display_prefix(key)
    secret = key[len(keygen.PREFIX) + 4 : -4]
    assert secret not in shown
    assert len(shown) == len(keygen.PREFIX) + 9


@given(KEYS, st.binary(min_size=1, max_size=64), st.binary(min_size=1, max_size=64))
def test_digests_depend_on_the_pepper_and_never_contain_the_key(key, one, two):
    assume(one != two)
    first = keygen.digest(key, one)
    assert first != keygen.digest(key, two)
    assert len(first) == 64 and set(first) <= set(string.hexdigits.lower())
    assert key[len(keygen.PREFIX) :] not in first


@given(st.one_of(st.none(), st.text(max_size=200)))
@example("Bearer")
@example("Bearer ")
@example("bearer\tsk_x")
@example("\x00")
def test_any_authorization_header_parses_or_is_refused_as_missing(header):
    try:
        value = parse_authorization(header)
    except Unauthorized as refused:
        assert refused.message == "Missing auth header"
        assert not header
        return
    assert isinstance(value, str)
    assert value == value.strip()


@given(KEYS, WHITESPACE, WHITESPACE, st.sampled_from(["Bearer", "bearer", "BEARER", "BeArEr"]))
def test_a_key_is_found_raw_or_after_bearer_with_any_padding(key, before, after, scheme):
    assert parse_authorization(f"{before}{key}{after}") == key
    assert parse_authorization(f"{before}{scheme} {after}{key}{after}") == key


@given(st.text(max_size=80).filter(lambda t: t.strip() != ""))
def test_nothing_but_a_real_key_after_bearer_is_well_formed(junk):
    assume(not keygen.is_well_formed(junk.strip()))
    assert not keygen.is_well_formed(parse_authorization(f"Bearer {junk}"))


@pytest.fixture
def app_key(admin) -> tuple[str, str]:
    app_id = admin.create_app()
    return app_id, admin.create_key(app_id, role="full-access")["plaintext_key"]


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(header=st.binary(max_size=300))
@example(header=b"Bearer ")
@example(header=b"\xff\xfe")
def test_any_authorization_bytes_get_the_one_401_body(client, app_key, header):
    app_id, _ = app_key
    headers = [(b"Authorization", header), (b"X-Agentmark-App-Id", app_id.encode())]
    status, body = asgi_request(client, "GET", "/v1/traces", headers)
    error = assert_envelope(status, body, expected=401)
    assert error in (
        {"code": "unauthorized", "message": "Not authorized"},
        {"code": "unauthorized", "message": "Missing auth header"},
    )


# --- OTLP JSON -------------------------------------------------------------------------

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=30,
)
HEX32 = st.binary(min_size=16, max_size=16).filter(any).map(bytes.hex)
HEX16 = st.binary(min_size=8, max_size=8).filter(any).map(bytes.hex)
# Every field of a span, each either a fitting value or anything at all.
MAYBE = lambda good: st.one_of(good, JSON_VALUES)  # noqa: E731
ANY_VALUE = st.recursive(
    st.builds(lambda s: {"stringValue": s}, st.text(max_size=20))
    | st.builds(lambda i: {"intValue": str(i)}, st.integers(-(2**63), 2**63 - 1))
    | st.builds(lambda b: {"boolValue": b}, st.booleans())
    | st.builds(lambda f: {"doubleValue": f}, st.floats(allow_nan=False, allow_infinity=False)),
    lambda children: (
        st.builds(lambda v: {"arrayValue": {"values": v}}, st.lists(children, max_size=3))
        | st.builds(
            lambda kv: {"kvlistValue": {"values": [{"key": k, "value": v} for k, v in kv.items()]}},
            st.dictionaries(st.text(max_size=8), children, max_size=3),
        )
    ),
    max_leaves=20,
)
ATTRIBUTES = st.lists(
    st.fixed_dictionaries({"key": st.text(max_size=16), "value": ANY_VALUE}), max_size=6
)
SPANS = st.fixed_dictionaries(
    {
        "traceId": MAYBE(HEX32),
        "spanId": MAYBE(HEX16),
        "name": MAYBE(st.text(max_size=30)),
        "kind": MAYBE(st.integers(0, 5)),
        "startTimeUnixNano": MAYBE(st.integers(1, 2**63 - 1).map(str)),
        "endTimeUnixNano": MAYBE(st.integers(0, 2**63 - 1).map(str)),
        "attributes": MAYBE(ATTRIBUTES),
        "status": MAYBE(st.fixed_dictionaries({"code": st.integers(0, 2)})),
    }
)
DOCUMENTS = st.one_of(
    JSON_VALUES,
    st.builds(
        lambda spans: {"resourceSpans": [{"scopeSpans": [{"spans": spans}]}]},
        st.lists(SPANS, max_size=3),
    ),
)


def _decoded_or_refused(decode: Any, body: bytes) -> list[otlp.OtlpSpan]:
    try:
        spans: list[otlp.OtlpSpan] = decode(body)
    except BadRequest as refused:
        assert refused.status_code == 400 and refused.message.startswith("Invalid OTLP request")
        return []
    return spans


@settings(max_examples=300)
@given(DOCUMENTS)
def test_any_json_document_decodes_to_spans_or_a_400(document):
    for span in _decoded_or_refused(otlp.decode_json, json.dumps(document).encode()):
        assert len(span.trace_id) == 32 and len(span.span_id) == 16
        assert 0 < span.start_time_ns <= span.end_time_ns < 2**63
        json.dumps(span.attributes)  # storable as JSON


@given(st.binary(max_size=300))
@example(b'{"resourceSpans": [{"scopeSpans": [{"spans": [null]}]}]}')
@example(b"\xef\xbb\xbf{}")
@example(b'{"resourceSpans": "\\ud800"}')
def test_any_bytes_sent_as_otlp_json_decode_or_get_a_400(body):
    _decoded_or_refused(otlp.decode_json, body)


@given(HEX32, HEX16, st.text(max_size=30), ATTRIBUTES)
def test_valid_json_spans_keep_their_ids_and_attributes(trace, span, name, attributes):
    document = {
        "resourceSpans": [
            {
                "scopeSpans": [
                    {
                        "spans": [
                            {
                                "traceId": trace.upper(),
                                "spanId": span,
                                "name": name,
                                "startTimeUnixNano": "1700000000000000000",
                                "attributes": attributes,
                            }
                        ]
                    }
                ]
            }
        ]
    }
    [decoded] = otlp.decode_json(json.dumps(document).encode())
    assert (decoded.trace_id, decoded.span_id) == (trace, span)
    assert decoded.name == name.replace("\x00", "\ufffd")
    assert set(decoded.attributes) == {a["key"].replace("\x00", "\ufffd") for a in attributes}


# --- OTLP protobuf ------------------------------------------------------------------------


@st.composite
def protobuf_requests(draw: st.DrawFn) -> ExportTraceServiceRequest:
    request = ExportTraceServiceRequest()
    for _ in range(draw(st.integers(0, 2))):
        scope_spans = request.resource_spans.add().scope_spans.add()
        scope_spans.scope.name = draw(st.text(max_size=10))
        for _ in range(draw(st.integers(0, 3))):
            span = scope_spans.spans.add()
            span.trace_id = draw(st.binary(max_size=17))
            span.span_id = draw(st.binary(max_size=9))
            span.parent_span_id = draw(st.sampled_from([b"", b"\x01" * 8]))
            span.name = draw(st.text(max_size=20))
            span.kind = draw(st.integers(0, 7))
            span.start_time_unix_nano = draw(st.integers(0, 2**64 - 1))
            span.end_time_unix_nano = draw(st.integers(0, 2**64 - 1))
            span.status.code = draw(st.integers(0, 3))
            for key in draw(st.lists(st.text(max_size=8), max_size=4)):
                attribute = span.attributes.add(key=key)
                kind = draw(st.sampled_from(["s", "i", "d", "b", "a", "bytes"]))
                if kind == "s":
                    attribute.value.string_value = draw(st.text(max_size=10))
                elif kind == "i":
                    attribute.value.int_value = draw(st.integers(-(2**63), 2**63 - 1))
                elif kind == "d":
                    attribute.value.double_value = draw(st.floats())
                elif kind == "b":
                    attribute.value.bool_value = draw(st.booleans())
                elif kind == "a":
                    attribute.value.array_value.values.add().string_value = "x"
                else:
                    attribute.value.bytes_value = draw(st.binary(max_size=8))
    return request


@settings(max_examples=300)
@given(protobuf_requests())
def test_any_protobuf_request_decodes_to_spans_or_a_400(request):
    body = request.SerializeToString()
    spans = _decoded_or_refused(otlp.decode_protobuf, body)
    sent = [s for r in request.resource_spans for ss in r.scope_spans for s in ss.spans]
    if spans:
        assert [s.trace_id for s in spans] == [s.trace_id.hex() for s in sent]
        for span in spans:
            assert "\x00" not in span.name
            json.dumps(span.attributes)


@given(protobuf_requests(), st.data())
def test_corrupted_protobuf_bodies_decode_or_get_a_400(request, data):
    body = bytearray(request.SerializeToString())
    assume(body)
    for _ in range(data.draw(st.integers(1, 4))):
        body[data.draw(st.integers(0, len(body) - 1))] = data.draw(st.integers(0, 255))
    _decoded_or_refused(otlp.decode_protobuf, bytes(body))


@given(st.binary(max_size=300))
def test_any_bytes_sent_as_protobuf_decode_or_get_a_400(body):
    _decoded_or_refused(otlp.decode_protobuf, body)


# --- query filters -----------------------------------------------------------------------


def _parsed_or_refused(parse: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return parse(*args, **kwargs)
    except BadRequest as refused:
        assert refused.code == "invalid_query_params"
        return None


@given(st.one_of(st.none(), st.text(max_size=40)), st.booleans())
@example("2025-01-01", True)
@example("9999-12-31", True)
@example("0001-01-01T00:00:00+14:00", False)
@example("2025-01-01T00:00:00 05:30", False)
def test_any_date_text_is_an_aware_instant_or_a_400(text, end):
    moment = _parsed_or_refused(parse_instant, text, "start_date", end=end)
    if moment is not None:
        assert moment.tzinfo is not None and moment.utcoffset().total_seconds() == 0


@given(st.one_of(st.none(), st.text(max_size=30)), st.one_of(st.none(), st.text(max_size=30)))
def test_any_date_range_is_ordered_or_a_400(start, end):
    found = _parsed_or_refused(date_range, start, end)
    if found is not None and found[0] is not None and found[1] is not None:
        assert found[0] <= found[1]


@given(st.one_of(st.none(), st.text(max_size=20)))
@example("ok")
@example("error ")
def test_any_status_text_is_a_status_or_a_400(text):
    _parsed_or_refused(parse_status, text)


@given(
    st.one_of(st.none(), st.text(max_size=20), st.sampled_from(sorted(TRACE_SORTS))),
    st.one_of(st.none(), st.text(max_size=20), st.sampled_from(sorted(SESSION_SORTS))),
    st.one_of(st.none(), st.sampled_from(["asc", "desc", "ASC"]), st.text(max_size=8)),
)
def test_any_sort_is_an_allowed_key_or_a_400(sort, sort_by, sort_order):
    for allowed in (TRACE_SORTS, SESSION_SORTS):
        found = _parsed_or_refused(
            parse_sort, sort, sort_by, sort_order, allowed=allowed, default=Sort("x", True)
        )
        if found is not None and found != Sort("x", True):
            assert found.key in allowed.values()


DAY_OR_MOMENT: TypeAdapter[Any] = TypeAdapter(DayOrMoment)


@given(st.text(max_size=40))
@example("-1")
@example("1700000000")
@example("2025-01-01")
def test_any_score_or_experiment_date_text_is_iso_or_refused(text):
    try:
        value = DAY_OR_MOMENT.validate_python(text)
    except ValidationError:
        return
    assert text.strip()[:4].isdigit() and text.strip()[4] == "-"
    if isinstance(value, datetime):
        assert value.tzinfo is not None and value.astimezone(UTC) == value


LIST_ROUTES = {
    "/v1/traces": [
        "start_date",
        "end_date",
        "status",
        "name",
        "user_id",
        "session_id",
        "tag",
        "model",
        "dataset_run_id",
        "sort",
        "sort_by",
        "sort_order",
    ],
    "/v1/spans": [
        "trace_id",
        "type",
        "status",
        "name",
        "model",
        "min_duration",
        "max_duration",
        "start_date",
        "end_date",
        "user_id",
        "session_id",
    ],
    "/v1/sessions": ["search", "start_date", "end_date", "sort", "sort_by", "sort_order"],
    "/v1/scores": ["resource_id", "name", "source", "start_date", "end_date"],
    "/v1/experiments": ["prompt_name", "dataset_path", "start_date", "end_date"],
    "/v1/datasets": ["name"],
}


@st.composite
def list_queries(draw: st.DrawFn) -> tuple[str, dict[str, str]]:
    path = draw(st.sampled_from(sorted(LIST_ROUTES)))
    names = st.sampled_from([*LIST_ROUTES[path], "limit", "offset"])
    values = st.one_of(
        URL_TEXT,
        st.integers(-(2**70), 2**70).map(str),
        st.sampled_from(["2025-05-01", "2025-05-01T10:00:00Z", "-cost", "OK", "%", "' OR 1=1 --"]),
    )
    return path, draw(st.dictionaries(names, values, max_size=5))


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(query=list_queries())
def test_any_filters_on_the_list_routes_answer_200_or_a_400(client, app_key, query):
    app_id, key = app_key
    path, params = query
    response = client.get(
        path, params=params, headers={"Authorization": key, "X-Agentmark-App-Id": app_id}
    )
    if response.status_code != 200:
        error = assert_envelope(response.status_code, response.content, expected=400)
        assert error["code"] == "invalid_query_params", error
