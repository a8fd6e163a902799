"""POST /v1/traces: OTLP JSON and protobuf, gzip, idempotent, strict, all or nothing."""

from __future__ import annotations

import gzip
import json
import uuid

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from tests.fixtures.otlp import payloads, sdk


@pytest.fixture
def app_key(admin):
    app_id = admin.create_app()
    return admin.create_key(app_id, role="full-access")


@pytest.fixture
def headers(app_key, key_headers):
    return key_headers(app_key)


def post_json(client, headers, document, **extra):
    return client.post(
        "/v1/traces",
        content=json.dumps(document),
        headers={**headers, "Content-Type": "application/json", **extra},
    )


def span_count(client, headers, trace_id):
    response = client.get(f"/v1/traces/{trace_id}/spans", headers=headers)
    if response.status_code == 404:
        return 0
    return response.json()["pagination"]["total"]


def test_a_json_export_is_stored_and_answered_with_a_request_id(client, headers):
    trace_id, spans = payloads.llm_trace(user_id="u-1", session_id="s-1")

    response = post_json(client, headers, payloads.request(spans))

    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert data["accepted_spans"] == 2
    assert uuid.UUID(data["requestId"])
    trace = client.get(f"/v1/traces/{trace_id}", headers=headers).json()["data"]
    assert trace["span_count"] == 2
    assert trace["user_id"] == "u-1"


def test_the_request_id_echoes_a_sent_x_request_id(client, headers):
    sent = str(uuid.uuid4())
    _, spans = payloads.llm_trace()
    response = post_json(client, headers, payloads.request(spans), **{"X-Request-Id": sent})
    assert response.json()["data"]["requestId"] == sent


def test_the_published_sdks_json_export_is_accepted_as_the_sdk_sends_it(client, app_key):
    with sdk.recording(app_key["app_id"]) as exporter:
        trace_id = sdk.run_agent()
    body = sdk.as_sdk_json(exporter.get_finished_spans())
    # The exporter's headers: the raw key (no Bearer), the app id, JSON.
    headers = {
        "Authorization": app_key["plaintext_key"],
        "X-Agentmark-App-Id": app_key["app_id"],
        "Content-Type": "application/json",
        "User-Agent": "agentmark-sdk-python/0.7",
    }

    response = client.post("/v1/traces", content=body, headers=headers)

    assert response.status_code == 200, response.text
    assert response.json()["data"]["accepted_spans"] == 3
    trace = client.get(f"/v1/traces/{trace_id}", headers=headers).json()["data"]
    assert trace["name"] == "qa-agent"
    assert trace["session_id"] == "sess-sdk"
    assert trace["tags"] == ["prod", "sdk"]  # sorted
    assert [s["name"] for s in trace["spans"]] == ["qa-agent", "search", "chat"]


def test_a_protobuf_export_gets_a_protobuf_answer(client, headers):
    with sdk.recording() as exporter:
        trace_id = sdk.run_agent()
    body = sdk.as_protobuf(exporter.get_finished_spans())

    response = client.post(
        "/v1/traces", content=body, headers={**headers, "Content-Type": "application/x-protobuf"}
    )

    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/x-protobuf"
    assert ExportTraceServiceResponse.FromString(response.content) == ExportTraceServiceResponse()
    assert span_count(client, headers, trace_id) == 3


@pytest.mark.parametrize("encoding", ["json", "protobuf"])
def test_gzipped_exports_are_inflated(client, headers, encoding):
    with sdk.recording() as exporter:
        trace_id = sdk.run_agent()
    spans = exporter.get_finished_spans()
    raw, content_type = (
        (sdk.as_sdk_json(spans), "application/json")
        if encoding == "json"
        else (sdk.as_protobuf(spans), "application/x-protobuf")
    )

    response = client.post(
        "/v1/traces",
        content=gzip.compress(raw),
        headers={**headers, "Content-Type": content_type, "Content-Encoding": "gzip"},
    )

    assert response.status_code == 200, response.text
    assert span_count(client, headers, trace_id) == 3


def test_a_resent_batch_is_stored_once(client, headers):
    trace_id, spans = payloads.llm_trace()
    document = payloads.request(spans)

    for _ in range(3):
        assert post_json(client, headers, document).status_code == 200

    assert span_count(client, headers, trace_id) == 2
    listed = client.get("/v1/traces", headers=headers).json()
    assert listed["pagination"]["total"] == 1
    assert listed["data"][0]["tokens"] == 150


def test_a_span_repeated_inside_one_batch_is_stored_once(client, headers):
    trace_id, spans = payloads.llm_trace()
    response = post_json(client, headers, payloads.request([*spans, spans[0], spans[1]]))
    assert response.status_code == 200
    assert response.json()["data"]["accepted_spans"] == 4
    assert span_count(client, headers, trace_id) == 2


def test_an_empty_export_is_accepted(client, headers):
    response = post_json(client, headers, {"resourceSpans": []})
    assert response.status_code == 200
    assert response.json()["data"]["accepted_spans"] == 0


@pytest.mark.parametrize(
    ("mutate", "named"),
    [
        pytest.param(
            lambda s: s.update(traceId="abc123"),
            "traceId: must be 32 hex characters",
            id="short trace id",
        ),
        pytest.param(
            lambda s: s.update(spanId="xyz" * 5 + "q"),
            "spanId: must be 16 hex characters",
            id="non-hex span id",
        ),
        pytest.param(
            lambda s: s.update(startTimeUnixNano="yesterday"), "startTimeUnixNano", id="bad time"
        ),
        pytest.param(
            lambda s: s.update(attributes={"a": "b"}),
            "attributes: must be a list",
            id="attribute map",
        ),
    ],
)
def test_one_bad_span_refuses_the_whole_batch_and_stores_nothing(client, headers, mutate, named):
    trace_id, spans = payloads.llm_trace()
    mutate(spans[1])

    response = post_json(client, headers, payloads.request(spans))

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_request_body"
    assert named in error["message"]
    assert "spans[1]" in error["message"]
    assert span_count(client, headers, trace_id) == 0


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"{not json", "application/json"),
        (b'{"resourceSpans": "nope"}', "application/json"),
        (b"\x0a\xff\xff\xff\xff\x0f", "application/x-protobuf"),
    ],
)
def test_a_malformed_body_is_a_400_in_the_envelope(client, headers, body, content_type):
    response = client.post(
        "/v1/traces", content=body, headers={**headers, "Content-Type": content_type}
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_request_body"
    assert response.json()["error"]["message"].startswith("Invalid OTLP request")


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/xml"])
def test_a_body_that_is_neither_json_nor_protobuf_is_a_415(client, headers, content_type):
    sent = {**headers}
    if content_type:
        sent["Content-Type"] = content_type
    response = client.post("/v1/traces", content=b"{}", headers=sent)
    assert response.status_code == 415
    assert response.json()["error"]["code"] == "unsupported_media_type"


def test_an_unknown_content_encoding_is_refused(client, headers):
    response = client.post(
        "/v1/traces",
        content=b"{}",
        headers={**headers, "Content-Type": "application/json", "Content-Encoding": "br"},
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "unsupported_encoding"


def test_a_body_that_is_not_gzip_but_says_so_is_refused(client, headers):
    response = client.post(
        "/v1/traces",
        content=b'{"resourceSpans": []}',
        headers={**headers, "Content-Type": "application/json", "Content-Encoding": "gzip"},
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_encoding"


def test_ingest_needs_a_key_and_reads_no_body_without_one(client, app_key):
    _, spans = payloads.llm_trace()
    response = client.post(
        "/v1/traces",
        json=payloads.request(spans),
        headers={"X-Agentmark-App-Id": app_key["app_id"]},
    )
    assert response.status_code == 401
    # A malformed body still gets the 401: the key is checked before the body is read.
    response = client.post(
        "/v1/traces",
        content=b"garbage",
        headers={"X-Agentmark-App-Id": app_key["app_id"], "Content-Type": "application/json"},
    )
    assert response.status_code == 401


def test_a_key_without_trace_ingest_is_forbidden(admin, client, key_headers):
    app_id = admin.create_app()
    reader = admin.create_key(app_id, role="read-only")
    _, spans = payloads.llm_trace()
    response = client.post("/v1/traces", json=payloads.request(spans), headers=key_headers(reader))
    assert response.status_code == 403
    assert response.json()["error"]["required_permission"] == "trace.ingest"


def test_the_sdk_role_may_ingest(admin, client, key_headers):
    app_id = admin.create_app()
    key = admin.create_key(app_id, role="sdk")
    _, spans = payloads.llm_trace()
    response = client.post("/v1/traces", json=payloads.request(spans), headers=key_headers(key))
    assert response.status_code == 200


def test_strings_postgresql_cannot_store_are_replaced_not_a_500(client, headers):
    trace_id = payloads.trace_id()
    span = payloads.span(trace_id, name="nul\u0000name", attrs={"k": "bad \ud800 and \u0000"})
    body = json.dumps(payloads.request([span])).encode()
    response = client.post(
        "/v1/traces", content=body, headers={**headers, "Content-Type": "application/json"}
    )
    assert response.status_code == 200, response.text
    stored = client.get(f"/v1/traces/{trace_id}/spans/{span['spanId']}", headers=headers).json()[
        "data"
    ]
    assert stored["name"] == "nul\ufffdname"
    assert stored["attributes"]["k"] == "bad ? and \ufffd"


def test_odd_values_survive_a_round_trip_through_the_database(client, headers):
    document = payloads.load("kitchen_sink.json")
    assert post_json(client, headers, document).status_code == 200
    span = client.get(
        "/v1/traces/0af7651916cd43dd8448eb211c80319c/spans/b7ad6b7169203331", headers=headers
    ).json()["data"]
    assert span["attributes"]["not_a_number"] == "NaN"
    assert span["attributes"]["nested"] == {"list": [1, "two", None], "empty": None}
    assert span["attributes"]["agentmark.metadata.attempt"] == 2
    assert span["resource_attributes"]["service.name"] == "checkout-worker"


def test_a_large_batch_is_stored_whole_in_one_request(client, headers):
    spans = []
    for _ in range(2500):
        spans.extend(payloads.llm_trace(user_id="bulk")[1])
    response = post_json(client, headers, payloads.request(spans))
    assert response.status_code == 200, response.text
    assert response.json()["data"]["accepted_spans"] == 5000
    listed = client.get("/v1/spans", params={"user_id": "bulk", "limit": 1}, headers=headers)
    assert listed.json()["pagination"]["total"] == 5000
