"""Real exporters over a real socket: the AgentMark SDK's JSON exporter and the
OpenTelemetry OTLP/HTTP protobuf exporter (gzip on) post to a running gateway."""

from __future__ import annotations

import pytest
from agentmark_sdk import JsonOtlpSpanExporter
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace.export import SpanExportResult

from tests.conftest import PEPPER
from tests.fixtures.otlp import sdk
from tests.servers import gateway_process

pytestmark = pytest.mark.slow


@pytest.fixture
def key(admin):
    return admin.create_key(admin.create_app(), role="sdk")


@pytest.fixture
def gateway(database_url, tmp_path):
    with gateway_process(database_url, tmp_path / "server", pepper=PEPPER) as base:
        yield base


def _reader_headers(admin, key_headers, app_id):
    return key_headers(admin.create_key(app_id, role="read-only"))


def test_the_agentmark_sdk_exporter_delivers_a_trace(admin, client, key, key_headers, gateway):
    with sdk.recording(key["app_id"]) as recorder:
        trace_id = sdk.run_agent(session_id="live-session")
    # The exporter init_tracing() builds: raw key, app id header, {base}/v1/traces.
    exporter = JsonOtlpSpanExporter(
        endpoint=f"{gateway}/v1/traces",
        headers={"Authorization": key["plaintext_key"], "X-Agentmark-App-Id": key["app_id"]},
    )

    assert exporter.export(recorder.get_finished_spans()) is SpanExportResult.SUCCESS

    reader = _reader_headers(admin, key_headers, key["app_id"])
    trace = client.get(f"/v1/traces/{trace_id}", headers=reader).json()["data"]
    assert trace["span_count"] == 3
    assert trace["session_id"] == "live-session"


def test_the_opentelemetry_protobuf_exporter_delivers_a_gzipped_trace(
    admin, client, key, key_headers, gateway
):
    with sdk.recording(key["app_id"]) as recorder:
        trace_id = sdk.run_agent()
    exporter = OTLPSpanExporter(
        endpoint=f"{gateway}/v1/traces",
        headers={
            "Authorization": f"Bearer {key['plaintext_key']}",
            "X-Agentmark-App-Id": key["app_id"],
        },
        compression=Compression.Gzip,
    )
    try:
        assert exporter.export(recorder.get_finished_spans()) is SpanExportResult.SUCCESS
    finally:
        exporter.shutdown()

    reader = _reader_headers(admin, key_headers, key["app_id"])
    spans = client.get(f"/v1/traces/{trace_id}/spans", headers=reader).json()
    assert spans["pagination"]["total"] == 3
    assert {s["span_kind"] for s in spans["data"]} == {"span", "tool", "llm"}


def test_an_exporter_with_a_wrong_key_fails_and_stores_nothing(
    admin, client, key, key_headers, gateway
):
    with sdk.recording(key["app_id"]) as recorder:
        trace_id = sdk.run_agent()
    exporter = JsonOtlpSpanExporter(
        endpoint=f"{gateway}/v1/traces",
        headers={"Authorization": "sk_agentmark_" + "x" * 38, "X-Agentmark-App-Id": key["app_id"]},
    )
    assert exporter.export(recorder.get_finished_spans()) is SpanExportResult.FAILURE
    reader = _reader_headers(admin, key_headers, key["app_id"])
    assert client.get(f"/v1/traces/{trace_id}", headers=reader).status_code == 404
