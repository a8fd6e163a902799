"""The fast JSON path (orjson, no per-string cleaning) decodes what the stdlib path did."""

from __future__ import annotations

import json

import pytest

from agentmark_gateway.errors import BadRequest
from agentmark_gateway.traces.otlp import decode_json


def _body(name: str, value: str) -> dict:
    span = {
        "traceId": "1" * 32,
        "spanId": "2" * 16,
        "name": name,
        "startTimeUnixNano": "1",
        "attributes": [{"key": "k", "value": {"stringValue": value}}],
    }
    return {"resourceSpans": [{"scopeSpans": [{"spans": [span]}]}]}


def test_a_body_with_a_byte_order_mark_is_still_read():
    body = b"\xef\xbb\xbf" + json.dumps(_body("s", "v")).encode()
    [span] = decode_json(body)
    assert span.attributes == {"k": "v"}


def test_a_nul_escape_alone_is_cleaned():
    [span] = decode_json(json.dumps(_body("a\u0000b", "c\u0000")).encode())
    assert (span.name, span.attributes["k"]) == ("a\ufffdb", "c\ufffd")


def test_non_ascii_text_sent_raw_or_escaped_reads_the_same():
    raw = json.dumps(_body("größe ✓", "日本"), ensure_ascii=False).encode()
    escaped = json.dumps(_body("größe ✓", "日本"), ensure_ascii=True).encode()
    assert decode_json(raw) == decode_json(escaped)


@pytest.mark.parametrize(
    "body", [b"{", b'{"resourceSpans": [1,]}', b"\xff\xfe", b'{"a": Infinity}']
)
def test_bodies_orjson_refuses_get_the_stdlib_messages(body):
    with pytest.raises(BadRequest, match="not valid JSON"):
        decode_json(body)


@pytest.mark.parametrize("number", ["9223372036854775808", "18446744073709551616", "1" + "0" * 30])
def test_an_integer_past_64_bits_is_named_as_such(number):
    body = json.dumps(_body("s", "v")).replace(
        '"startTimeUnixNano": "1"', f'"startTimeUnixNano": {number}'
    )
    with pytest.raises(BadRequest) as refused:
        decode_json(body.encode())
    assert "outside the 64-bit range" in refused.value.message
