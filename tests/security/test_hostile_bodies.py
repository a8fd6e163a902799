"""Hostile bodies over a real socket: deep JSON on every JSON body route of the API
document, huge OTLP attribute maps, gzip bombs. A 4xx in the envelope every time,
never a 500, never a hang; and nothing a refused request sent was stored."""

from __future__ import annotations

import gzip
import json
import time
import zlib
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from tests.fixtures.otlp import payloads
from tests.security.support import assert_envelope

MAX_BODY = 10 * 1024 * 1024  # the default AGENTMARK_MAX_BODY_BYTES the live gateway runs with
DEPTH = 100_000


def _json_body_operations(spec: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(method, path, auth) of every operation whose request body may be JSON."""
    found = []
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            content = operation.get("requestBody", {}).get("content", {})
            if "application/json" not in content:
                continue
            security = operation.get("security") or [{}]
            auth = next(iter(security[0]), "none")
            found.append((method.upper(), path, auth))
    return sorted(found)


def _target(path: str, live) -> tuple[str, dict[str, str]]:
    """A concrete URL for a path template, and the query a route cannot do without."""
    values = {
        "datasetName": "hostile",
        "app_id": live.app.app_id,
        "key_id": "key_doesnotexist",
        "user_id": "usr_doesnotexist",
    }
    for name, value in values.items():
        path = path.replace("{" + name + "}", value)
    params = {"path": "hostile.prompt.mdx"} if path == "/v1/templates" else {}
    return path, params


def _headers(auth: str, live) -> dict[str, str]:
    headers = {"Content-Type": "application/json"}
    if auth == "ApiKey":
        headers.update(live.data_headers)
    elif auth == "SessionToken":
        headers.update(live.session_headers)
    return headers


DEEP_BODIES = {
    "arrays": b"[" * DEPTH + b"]" * DEPTH,
    "objects": b'{"a":' * DEPTH + b"1" + b"}" * DEPTH,
    "unclosed": b"[" * DEPTH,
}


@pytest.mark.parametrize("shape", list(DEEP_BODIES))
def test_deep_json_is_refused_on_every_json_body_route(live, shape):
    with live.http() as http:
        operations = _json_body_operations(http.get("/v1/openapi.json").json())
        assert len(operations) >= 15, operations
        for method, path, auth in operations:
            url, params = _target(path, live)
            started = time.monotonic()
            response = http.request(
                method, url, params=params, content=DEEP_BODIES[shape], headers=_headers(auth, live)
            )
            assert_envelope(response.status_code, response.content)
            assert time.monotonic() - started < 10, f"{method} {path} took too long"


def _nested(depth: int) -> Any:
    value: Any = "bottom"
    for _ in range(depth):
        value = [value]
    return value


# Free-form JSON fields, nested deeper than the API could ever send back.
DEEP_FIELDS = [
    ("POST", "/v1/scores", {"resource_id": "r", "name": "deep", "score": 1, "metadata": {"a": 0}}),
    (
        "POST",
        "/v1/scores/batch",
        {"scores": [{"resource_id": "r", "name": "deep", "score": 1, "metadata": {"a": 0}}]},
    ),
    ("POST", "/v1/datasets/deep/rows", {"input": {"a": 0}}),
]


def _bury(body: Any, deep: Any) -> Any:
    """``body`` with its innermost 0 replaced by ``deep``."""
    text = json.dumps(body)
    return json.loads(text.replace(": 0}", ": " + json.dumps(deep) + "}", 1))


@pytest.mark.parametrize("depth", [300, 900])
def test_json_fields_nested_too_deep_to_send_back_are_refused_and_lists_still_work(live, depth):
    with live.http() as http:
        for method, path, body in DEEP_FIELDS:
            response = http.request(
                method, path, json=_bury(body, _nested(depth)), headers=live.data_headers
            )
            assert_envelope(response.status_code, response.content, expected=400)
            assert "must not nest deeper than" in response.text, response.text
        for path, params in (
            ("/v1/templates", {"path": "deep.prompt.mdx"}),
            ("/v1/templates", {"path": "deep.jsonl"}),
        ):
            document = {"input": {"a": _nested(depth)}}
            response = http.put(path, params=params, json=document, headers=live.data_headers)
            assert_envelope(response.status_code, response.content, expected=400)
        for path in ("/v1/scores", "/v1/experiments", "/v1/datasets", "/v1/datasets/deep/rows"):
            response = http.get(path, headers=live.data_headers)
            assert response.status_code in (200, 404), f"{path}: {response.text}"


# --- OTLP ----------------------------------------------------------------------------


def _otlp(attributes: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    trace = payloads.trace_id()
    return trace, payloads.request([payloads.span(trace, attrs=attributes)])


def test_an_attribute_map_larger_than_the_body_limit_is_413(live):
    trace, body = _otlp({f"attribute.{n:07d}": "x" * 20 for n in range(300_000)})
    raw = json.dumps(body).encode()
    assert len(raw) > MAX_BODY
    with live.http() as http:
        response = http.post("/v1/traces", content=raw, headers=_headers("ApiKey", live))
        assert_envelope(response.status_code, response.content, expected=413)
        assert http.get(f"/v1/traces/{trace}", headers=live.data_headers).status_code == 404


def test_an_attribute_map_that_inflates_past_the_limit_is_413(live):
    trace, body = _otlp({f"attribute.{n:07d}": "x" * 100 for n in range(200_000)})
    packed = gzip.compress(json.dumps(body).encode())
    assert len(packed) < MAX_BODY
    with live.http() as http:
        response = http.post(
            "/v1/traces",
            content=packed,
            headers={**_headers("ApiKey", live), "Content-Encoding": "gzip"},
        )
        assert_envelope(response.status_code, response.content, expected=413)
        assert http.get(f"/v1/traces/{trace}", headers=live.data_headers).status_code == 404


def test_a_huge_attribute_map_within_the_limit_is_stored_whole_and_quickly(live):
    attributes = {f"attribute.{n:06d}": f"value {n}" for n in range(50_000)}
    trace, body = _otlp(attributes)
    with live.http() as http:
        started = time.monotonic()
        response = http.post("/v1/traces", json=body, headers=live.data_headers)
        assert response.status_code == 200, response.text
        span = body["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["spanId"]
        stored = http.get(f"/v1/traces/{trace}/spans/{span}", headers=live.data_headers)
        assert stored.status_code == 200
        assert stored.json()["data"]["attributes"]["attribute.049999"] == "value 49999"
        assert time.monotonic() - started < 20


def _nested_any_value(depth: int) -> str:
    """An OTLP JSON AnyValue of kvlists ``depth`` deep, as text (too deep for json.dumps)."""
    head = '{"kvlistValue":{"values":[{"key":"k","value":' * depth
    return head + '{"stringValue":"bottom"}' + "}]}}" * depth


@pytest.mark.parametrize("depth", [33, 200, 300])
def test_attribute_values_nested_deeper_than_otlp_allows_are_400(live, depth):
    trace = payloads.trace_id()
    span = payloads.span(trace)
    span["attributes"] = [{"key": "deep", "value": "HERE"}]
    body = json.dumps(payloads.request([span])).replace('"HERE"', _nested_any_value(depth))
    with live.http() as http:
        response = http.post("/v1/traces", content=body, headers=_headers("ApiKey", live))
        error = assert_envelope(response.status_code, response.content, expected=400)
        assert "deeper" in error["message"] or "nested" in error["message"], error
        assert http.get(f"/v1/traces/{trace}", headers=live.data_headers).status_code == 404


def _field(number: int, payload: bytes) -> bytes:
    """One length-delimited protobuf field, encoded by hand (no depth limit here)."""
    length, size = b"", len(payload)
    while True:
        byte, size = size & 0x7F, size >> 7
        length += bytes([byte | (0x80 if size else 0)])
        if not size:
            break
    return bytes([number << 3 | 2]) + length + payload


def _protobuf_request(value: bytes) -> bytes:
    """An ExportTraceServiceRequest of one span with one attribute of the given AnyValue."""
    start = (1_700_000_000_000_000_000).to_bytes(8, "little")
    span = (
        _field(1, b"\x01" * 16)  # trace_id
        + _field(2, b"\x02" * 8)  # span_id
        + _field(5, b"deep")  # name
        + bytes([7 << 3 | 1])  # start_time_unix_nano, fixed64
        + start
        + _field(9, _field(1, b"deep") + _field(2, value))  # attributes: KeyValue
    )
    return _field(1, _field(2, _field(2, span)))  # resource_spans.scope_spans.spans


@pytest.mark.parametrize("depth", [40, 90, 5000])
def test_protobuf_values_nested_deeper_than_otlp_allows_are_400(live, depth):
    value = AnyValue(string_value="bottom").SerializeToString()
    for _ in range(depth):
        value = _field(5, _field(1, value))  # AnyValue.array_value.values
    body = _protobuf_request(value)
    assert ExportTraceServiceRequest.FromString(_protobuf_request(b"")).resource_spans
    with live.http() as http:
        response = http.post(
            "/v1/traces",
            content=body,
            headers={**live.data_headers, "Content-Type": "application/x-protobuf"},
        )
        assert_envelope(response.status_code, response.content, expected=400)


# --- compressed and oversized bodies --------------------------------------------------


def _bomb(wbits: int) -> bytes:
    """256 MiB of zeros (25 times the body limit), packed into about 256 KiB."""
    packer = zlib.compressobj(9, zlib.DEFLATED, wbits)
    chunk = bytes(2**20)
    return b"".join(packer.compress(chunk) for _ in range(256)) + packer.flush()


@pytest.fixture(scope="module")
def gzip_bomb() -> bytes:
    return _bomb(31)


@pytest.fixture(scope="module")
def deflate_bomb() -> bytes:
    return _bomb(15)


def _raw_body_routes(live) -> list[tuple[str, str, dict[str, str], str]]:
    """Routes that read their body themselves and honour Content-Encoding."""
    return [
        ("POST", "/v1/traces", {}, "application/json"),
        ("POST", "/v1/traces", {}, "application/x-protobuf"),
        ("PUT", "/v1/templates", {"path": "bomb.prompt.mdx"}, "application/json"),
        ("PUT", "/v1/templates", {"path": "bomb.jsonl"}, "application/x-ndjson"),
    ]


def test_gzip_and_deflate_bombs_are_413_without_inflating_them(live, gzip_bomb, deflate_bomb):
    assert len(gzip_bomb) < MAX_BODY
    with live.http() as http:
        for bomb, encoding in ((gzip_bomb, "gzip"), (deflate_bomb, "deflate")):
            for method, path, params, media in _raw_body_routes(live):
                started = time.monotonic()
                response = http.request(
                    method,
                    path,
                    params=params,
                    content=bomb,
                    headers={
                        **live.data_headers,
                        "Content-Type": media,
                        "Content-Encoding": encoding,
                    },
                )
                error = assert_envelope(response.status_code, response.content, expected=413)
                assert error["code"] == "payload_too_large"
                assert time.monotonic() - started < 10


def test_a_bomb_inside_a_gzip_is_inflated_once_and_refused(live, gzip_bomb):
    twice = gzip.compress(gzip_bomb)
    with live.http() as http:
        for method, path, params, media in _raw_body_routes(live):
            response = http.request(
                method,
                path,
                params=params,
                content=twice,
                headers={**live.data_headers, "Content-Type": media, "Content-Encoding": "gzip"},
            )
            assert_envelope(response.status_code, response.content)


def test_gzip_on_routes_that_do_not_inflate_is_a_plain_bad_body(live, gzip_bomb):
    with live.http() as http:
        for path, body in (("/v1/scores", gzip_bomb), ("/v1/datasets/bomb/rows", gzip_bomb)):
            response = http.post(
                path,
                content=body,
                headers={**_headers("ApiKey", live), "Content-Encoding": "gzip"},
            )
            assert_envelope(response.status_code, response.content, expected=400)


@pytest.mark.parametrize(
    ("encoding", "body", "status"),
    [
        ("gzip", b"\x1f\x8b\x08\x00not really gzip", 400),
        ("gzip", gzip.compress(b'{"resourceSpans": []}')[:-9], 400),  # truncated
        ("br", b"anything", 400),
        ("gzip, gzip", gzip.compress(gzip.compress(b"{}")), 400),
    ],
    ids=["garbage", "truncated", "unknown-encoding", "stacked-encodings"],
)
def test_broken_or_unknown_encodings_are_400(live, encoding, body, status):
    with live.http() as http:
        response = http.post(
            "/v1/traces",
            content=body,
            headers={**_headers("ApiKey", live), "Content-Encoding": encoding},
        )
        assert_envelope(response.status_code, response.content, expected=status)


def test_a_body_over_the_limit_is_413_declared_or_streamed(live):
    big = b"[" + b"0," * (MAX_BODY // 2) + b"0]"

    def chunks():
        for start in range(0, len(big), 65536):
            yield big[start : start + 65536]

    with live.http() as http:
        declared = http.post("/v1/traces", content=big, headers=_headers("ApiKey", live))
        assert_envelope(declared.status_code, declared.content, expected=413)
        streamed = http.post("/v1/scores", content=chunks(), headers=_headers("ApiKey", live))
        assert "content-length" not in streamed.request.headers
        assert_envelope(streamed.status_code, streamed.content, expected=413)
