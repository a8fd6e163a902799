"""The published clients, with a Read-Only key, are refused with 403; with a deleted
key, 401. Statuses are recorded on the gateway's side of a real socket, because the
clients themselves only report success or failure."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator

import pytest
from agentmark_sdk import AgentMarkSDK, JsonOtlpSpanExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace.export import SpanExportResult

from agentmark_gateway.app import create_app
from tests.fixtures.otlp import sdk as sdk_spans
from tests.integration.test_templates_prompt_core import prompt_core  # noqa: F401
from tests.servers import StatusRecorder, threaded_gateway

pytestmark = pytest.mark.slow


@pytest.fixture
def live(settings) -> Iterator[tuple[str, StatusRecorder]]:
    with threaded_gateway(create_app(settings)) as served:
        yield served


@pytest.fixture
def keys(admin, client):
    """A Read-Only key and a deleted SDK key of one app."""
    app_id = admin.create_app()
    reader = admin.create_key(app_id, role="read-only")
    deleted = admin.create_key(app_id, role="sdk")
    response = client.delete(
        f"/v1/api-keys/{deleted['id']}", headers={**admin.headers, "X-Agentmark-App-Id": app_id}
    )
    assert response.status_code == 204
    return {"read-only": reader, "deleted": deleted}


EXPECTED = {"read-only": 403, "deleted": 401}


@pytest.mark.parametrize("which", ["read-only", "deleted"])
def test_sdk_score_sync_is_refused(live, keys, which):
    base, recorder = live
    key = keys[which]
    client = AgentMarkSDK(api_key=key["plaintext_key"], app_id=key["app_id"], base_url=base)
    with pytest.raises(Exception) as raised:
        client.score_sync(resource_id="a" * 32, name="accuracy", score=1.0)
    error = raised.value.args[0]
    assert error["code"] == ("forbidden" if which == "read-only" else "unauthorized")
    assert recorder.statuses("POST", "/v1/scores") == [EXPECTED[which]]


@pytest.mark.parametrize("which", ["read-only", "deleted"])
def test_sdk_trace_exporter_is_refused(live, keys, which):
    base, recorder = live
    key = keys[which]
    with sdk_spans.recording(key["app_id"]) as spans:
        sdk_spans.run_agent()
    exporter = JsonOtlpSpanExporter(
        endpoint=f"{base}/v1/traces",
        headers={"Authorization": key["plaintext_key"], "X-Agentmark-App-Id": key["app_id"]},
    )
    assert exporter.export(spans.get_finished_spans()) is SpanExportResult.FAILURE
    assert recorder.statuses("POST", "/v1/traces") == [EXPECTED[which]]


@pytest.mark.parametrize("which", ["read-only", "deleted"])
def test_opentelemetry_exporter_is_refused(live, keys, which):
    base, recorder = live
    key = keys[which]
    with sdk_spans.recording(key["app_id"]) as spans:
        sdk_spans.run_agent()
    exporter = OTLPSpanExporter(
        endpoint=f"{base}/v1/traces",
        headers={
            "Authorization": f"Bearer {key['plaintext_key']}",
            "X-Agentmark-App-Id": key["app_id"],
        },
    )
    try:
        assert exporter.export(spans.get_finished_spans()) is SpanExportResult.FAILURE
    finally:
        exporter.shutdown()
    assert set(recorder.statuses("POST", "/v1/traces")) == {EXPECTED[which]}


LOADER = """
import asyncio
from agentmark.prompt_core import ApiLoader

async def main():
    loader = ApiLoader.cloud()
    for call in (lambda: loader.load("any.prompt.mdx", "text"),
                 lambda: loader.load_dataset("any.jsonl")):
        try:
            await call()
        except ValueError as exc:
            print("refused:", exc)
        else:
            print("loaded")

asyncio.run(main())
"""


@pytest.mark.parametrize("which", ["read-only", "deleted"])
def test_prompt_core_api_loader_is_refused(prompt_core, live, keys, which, tmp_path):  # noqa: F811
    python, target = prompt_core
    base, recorder = live
    key = keys[which]
    script = tmp_path / "loader.py"
    script.write_text(LOADER)
    done = subprocess.run(
        [python, str(script)],
        env={
            "PATH": os.environ.get("PATH", ""),
            "PYTHONPATH": str(target),
            "AGENTMARK_BASE_URL": base,
            "AGENTMARK_API_KEY": key["plaintext_key"],
            "AGENTMARK_APP_ID": key["app_id"],
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("refused:") == 2, done.stdout
    assert recorder.statuses("GET", "/v1/templates") == [EXPECTED[which]] * 2
