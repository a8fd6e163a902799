"""The old TypeScript SDK's routes: POST /v1/export-traces (flat span rows) and POST /v1/score."""

from __future__ import annotations

import gzip
import json
import time
from typing import Any

import pytest
from sqlalchemy import select

from agentmark_gateway.traces.models import Span, Trace
from tests.fixtures.otlp import legacy_rows, payloads

ROOT = "a1b2c3d4e5f60718"
CHILD = "0f1e2d3c4b5a6978"


@pytest.fixture
def app_key(admin):
    return admin.create_key(admin.create_app(), role="sdk")


@pytest.fixture
def headers(app_key, key_headers):
    return key_headers(app_key)


def export(client, headers, rows, **extra):
    return client.post(
        "/v1/export-traces",
        content=json.dumps(rows),
        headers={**headers, "Content-Type": "application/json", **extra},
    )


def _trace_both_ways(trace: str, start: int) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """One trace (a root and a model call with an event) as old-SDK rows and as OTLP JSON."""
    root_attrs = {"ai.telemetry.metadata.user_id": "u-1", "agentmark.user_id": "u-1"}
    chat_attrs = {
        "gen_ai.request.model": "gpt-4o",
        "gen_ai.usage.input_tokens": 120,
        "gen_ai.usage.output_tokens": 30,
        "ai.prompt": "What is 2 + 2?",
        "ai.response.text": "4",
        "ai.settings.maxRetries": 2,
        "ai.response.finishReasons": ["stop"],
    }
    event = (start + 3 * legacy_rows.MS, "first token", {"tokens": 1})
    rows = [
        legacy_rows.row(
            trace, ROOT, name="answer", start_ns=start, duration_ms=40, attrs=root_attrs
        ),
        legacy_rows.row(
            trace,
            CHILD,
            name="ai.generateText.doGenerate",
            parent=ROOT,
            start_ns=start + legacy_rows.MS,
            duration_ms=25,
            status=2,
            message="rate limited",
            kind=2,
            attrs=chat_attrs,
            events=(event,),
        ),
    ]
    otlp_id = trace.replace("-", "")
    root = payloads.span(
        otlp_id, ROOT, name="answer", start_ns=start, duration_ms=40, attrs=root_attrs, kind=1
    )
    root["status"] = {"code": 1}
    chat = payloads.span(
        otlp_id,
        CHILD,
        name="ai.generateText.doGenerate",
        parent=ROOT,
        start_ns=start + legacy_rows.MS,
        duration_ms=25,
        status=2,
        message="rate limited",
        attrs=chat_attrs,
        kind=3,
        events=[
            {
                "timeUnixNano": str(event[0]),
                "name": event[1],
                "attributes": payloads.attributes(event[2]),
            }
        ],
    )
    document = payloads.request([root, chat], resource=legacy_rows.RESOURCE)
    # The rows carry no instrumentation scope.
    del document["resourceSpans"][0]["scopeSpans"][0]["scope"]
    return rows, document


def _stored(client, app_id: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Every span and trace row of the app, without the columns that differ by app or time."""
    gateway = client.app.state.gateway
    skip = {"id", "app_id", "received_at", "updated_at", "api_key_id"}

    async def read() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        async with gateway.sessionmaker() as session:
            spans = await session.scalars(
                select(Span).where(Span.app_id == app_id).order_by(Span.span_id)
            )
            traces = await session.scalars(select(Trace).where(Trace.app_id == app_id))
            return (
                [_columns(span, skip) for span in spans],
                [_columns(trace, skip) for trace in traces],
            )

    return client.portal.call(read)


def _columns(row: Any, skip: set[str]) -> dict[str, Any]:
    return {c.name: getattr(row, c.key) for c in row.__table__.columns if c.name not in skip}


@pytest.mark.parametrize(
    "trace", ["4bf92f3577b34da6a3ce929d0e0e4736", "4bf92f35-77b3-4da6-a3ce-929d0e0e4736"]
)
def test_rows_are_stored_exactly_as_the_same_spans_sent_over_otlp(
    admin, client, key_headers, trace
):
    start = time.time_ns() // 1000 * 1000
    rows, document = _trace_both_ways(trace, start)
    legacy_app, otlp_app = admin.create_app(), admin.create_app()
    legacy_key = admin.create_key(legacy_app, role="sdk")
    otlp_key = admin.create_key(otlp_app, role="sdk")

    response = export(client, key_headers(legacy_key), rows)
    assert response.status_code == 200, response.text
    assert response.json()["data"]["accepted_spans"] == 2
    response = client.post("/v1/traces", json=document, headers=key_headers(otlp_key))
    assert response.status_code == 200, response.text

    legacy_spans, legacy_traces = _stored(client, legacy_app)
    otlp_spans, otlp_traces = _stored(client, otlp_app)
    assert legacy_spans == otlp_spans
    assert legacy_traces == otlp_traces
    assert [span["trace_id"] for span in legacy_spans] == ["4bf92f3577b34da6a3ce929d0e0e4736"] * 2
    chat = next(span for span in legacy_spans if span["span_id"] == CHILD)
    assert chat["kind"] == 3  # client, in OTLP's numbering
    assert chat["duration_ms"] == 25
    assert chat["model"] == "gpt-4o" and chat["cost"] > 0
    assert "end_time" not in chat["attributes"]


def test_a_uuid_trace_id_is_read_back_as_its_hex_digits(admin, client, key_headers):
    app_id = admin.create_app()
    key = admin.create_key(app_id, permissions=["trace.ingest", "trace.read"])
    rows = [legacy_rows.row("0AF76519-16CD-43DD-8448-EB211C80319C", ROOT, start_ns=time.time_ns())]
    assert export(client, key_headers(key), rows).status_code == 200
    read = client.get("/v1/traces/0af7651916cd43dd8448eb211c80319c", headers=key_headers(key))
    assert read.status_code == 200, read.text
    assert read.json()["data"]["span_count"] == 1


def test_a_re_sent_export_stores_each_span_once(admin, client, key_headers):
    app_id = admin.create_app()
    key = admin.create_key(app_id, permissions=["trace.ingest", "trace.read"])
    rows, _ = _trace_both_ways("9a3f0c1e2b4d5f6a7b8c9d0e1f2a3b4c", time.time_ns())
    for _ in range(2):
        assert export(client, key_headers(key), rows).status_code == 200
    trace = client.get("/v1/traces/9a3f0c1e2b4d5f6a7b8c9d0e1f2a3b4c", headers=key_headers(key))
    assert trace.status_code == 200, trace.text
    assert trace.json()["data"]["span_count"] == 2


def test_an_empty_array_is_accepted(client, headers):
    response = export(client, headers, [])
    assert response.status_code == 200
    assert response.json()["data"]["accepted_spans"] == 0


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"rows": []}, "body must be a JSON array"),
        ([{"TraceId": "x" * 32, "SpanId": ROOT, "Timestamp": 1}], "[0].TraceId: must be 32 hex"),
        ([{"TraceId": "ab" * 16, "SpanId": "12", "Timestamp": 1}], "[0].SpanId: must be 16 hex"),
        ([{"TraceId": "ab" * 16, "SpanId": ROOT}], "[0].Timestamp: must be a positive number"),
        (
            [{"TraceId": "ab" * 16, "SpanId": ROOT, "Timestamp": 1, "SpanKind": 7}],
            "[0].SpanKind: must be one of",
        ),
        (
            [{"TraceId": "ab" * 16, "SpanId": ROOT, "Timestamp": 1, "SpanAttributes": []}],
            "[0].SpanAttributes: must be an object",
        ),
    ],
)
def test_a_malformed_row_refuses_the_whole_request(client, headers, body, message):
    good = legacy_rows.row("cd" * 16, CHILD, start_ns=time.time_ns())
    rows = body if isinstance(body, dict) else [*body, good]
    response = export(client, headers, rows)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_request_body"
    assert message in error["message"]


def test_body_that_is_not_json_is_a_400(client, headers):
    response = client.post(
        "/v1/export-traces",
        content=b"[{",
        headers={**headers, "Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert response.json()["error"]["message"].startswith("Invalid span rows: body is not valid")


def test_another_content_type_is_a_415(client, headers):
    response = client.post(
        "/v1/export-traces", content=b"[]", headers={**headers, "Content-Type": "text/plain"}
    )
    assert response.status_code == 415
    assert response.json()["error"]["code"] == "unsupported_media_type"


def test_a_body_inflating_past_the_limit_is_a_413(client, headers, settings):
    rows = [legacy_rows.row("ef" * 16, ROOT, start_ns=time.time_ns(), attrs={"big": "x" * 64})]
    body = gzip.compress(json.dumps(rows * (settings.max_body_bytes // 400 + 1)).encode())
    assert len(body) < settings.max_body_bytes
    response = client.post(
        "/v1/export-traces",
        content=body,
        headers={**headers, "Content-Type": "application/json", "Content-Encoding": "gzip"},
    )
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"


def test_nul_characters_are_stored_as_replacement_characters(admin, client, key_headers):
    app_id = admin.create_app()
    key = admin.create_key(app_id, permissions=["trace.ingest", "span.read"])
    rows = [
        legacy_rows.row(
            "12" * 16, ROOT, name="a\u0000b", start_ns=time.time_ns(), attrs={"k": "v\u0000"}
        )
    ]
    assert export(client, key_headers(key), rows).status_code == 200
    span = client.get(f"/v1/traces/{'12' * 16}/spans/{ROOT}", headers=key_headers(key)).json()
    assert span["data"]["name"] == "a\ufffdb"
    assert span["data"]["attributes"]["k"] == "v\ufffd"


# --- POST /v1/score ----------------------------------------------------------------------


def test_the_old_sdk_score_call_is_stored_as_a_score(admin, client, key_headers):
    app_id = admin.create_app()
    key = admin.create_key(app_id, permissions=["score.write", "score.read"])
    # What @agentmark/sdk 4.2.0 sends: camelCase, no source.
    body = {
        "resourceId": "4bf92f3577b34da6a3ce929d0e0e4736",
        "label": "good",
        "reason": "matches",
        "score": 0.75,
        "name": "accuracy",
        "type": "numeric",
    }
    response = client.post("/v1/score", json=body, headers=key_headers(key))
    assert response.status_code == 201, response.text
    created = response.json()["data"]
    stored = client.get(f"/v1/scores/{created['id']}", headers=key_headers(key)).json()["data"]
    assert stored["resource_id"] == body["resourceId"]
    assert stored["score"] == 0.75
    assert stored["label"] == "good"
    assert stored["source"] == "api"


def test_the_old_score_route_refuses_what_the_new_one_refuses(client, headers):
    response = client.post("/v1/score", json={"name": "accuracy", "score": 1}, headers=headers)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_request_body"
