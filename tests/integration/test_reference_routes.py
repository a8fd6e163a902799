"""The rest of AgentMark's reference API: trace graph, requests, config, score configs,
pricing and capabilities, each answered in the reference OpenAPI's shape and within
the caller's app."""

from __future__ import annotations

import json
import time
from typing import Any

import jsonschema
import pytest

from tests.fixtures.otlp import payloads
from tests.live_gateway import shared_path

CONFIG = {
    "version": "2.0.0",
    "agentmarkPath": ".",
    "scores": {
        "tone": {
            "type": "categorical",
            "description": "How it sounds",
            "categories": [{"label": "kind", "value": 1}, {"label": "rude", "value": 0}],
        },
        "accuracy": {"type": "numeric", "min": 0, "max": 1},
        "correct": {"type": "boolean"},
        "unknown-kind": {"type": "emoji"},
        "no-categories": {"type": "categorical", "categories": []},
    },
}


@pytest.fixture(scope="module")
def reference() -> dict[str, Any]:
    path = shared_path("reference", "agentmark", "openapi-local-server.json")
    spec: dict[str, Any] = json.loads(path.read_text())
    return spec


def _json_schema(schema: Any) -> Any:
    """OpenAPI 3.0's ``nullable`` as JSON Schema's null type (jsonschema ignores it)."""
    if isinstance(schema, list):
        return [_json_schema(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    converted = {key: _json_schema(value) for key, value in schema.items() if key != "nullable"}
    if schema.get("nullable"):
        if "type" in converted:
            converted["type"] = [converted["type"], "null"]
        if "enum" in converted:
            converted["enum"] = [*converted["enum"], None]
    return converted


def assert_reference_shape(reference, path: str, response, status: int = 200) -> None:
    operation = reference["paths"][path]["get"]
    schema = operation["responses"][str(status)]["content"]["application/json"]["schema"]
    jsonschema.validate(response.json(), _json_schema(schema))


@pytest.fixture
def two_apps(admin, key_headers):
    """Two apps, each with a full-access key's headers."""
    apps = []
    for _ in range(2):
        app_id = admin.create_app()
        apps.append(key_headers(admin.create_key(app_id, role="full-access")))
    return apps


def ingest(client, headers, spans):
    response = client.post("/v1/traces", json=payloads.request(spans), headers=headers)
    assert response.status_code == 200, response.text


def publish_config(client, headers, config=CONFIG):
    response = client.put(
        "/v1/templates",
        params={"path": "agentmark.json"},
        content=json.dumps(config).encode(),
        headers={**headers, "Content-Type": "application/json"},
    )
    assert response.status_code in (200, 201), response.text


# --- GET /v1/traces/{traceId}/graph -----------------------------------------------------


def _graph_trace(trace: str) -> list[dict[str, Any]]:
    start = time.time_ns()
    meta = "agentmark.metadata.graph.node."
    root = payloads.span_id()
    return [
        payloads.span(trace, root, name="run", start_ns=start),
        payloads.span(
            trace,
            name="plan-step",
            parent=root,
            start_ns=start + 1,
            attrs={f"{meta}id": "plan", f"{meta}type": "router", f"{meta}display_name": "Plan"},
        ),
        payloads.span(
            trace,
            name="search-step",
            parent=root,
            start_ns=start + 2,
            attrs={
                "ai.telemetry.metadata.graph.node.id": "search",
                "ai.telemetry.metadata.graph.node.type": "tool",
                "ai.telemetry.metadata.graph.node.parent_id": "plan",
            },
        ),
        payloads.span(
            trace,
            name="answer-step",
            parent=root,
            start_ns=start + 3,
            attrs={f"{meta}id": "answer", f"{meta}parent_ids": '["plan","search"]'},
        ),
    ]


def test_trace_graph_lists_the_nodes_spans_declare(client, two_apps, reference):
    trace = payloads.trace_id()
    spans = _graph_trace(trace)
    ingest(client, two_apps[0], spans)

    response = client.get(f"/v1/traces/{trace}/graph", headers=two_apps[0])

    assert response.status_code == 200, response.text
    assert_reference_shape(reference, "/v1/traces/{traceId}/graph", response)
    nodes = [
        (n["nodeId"], n["nodeType"], n["displayName"], n["spanName"], n.get("parentNodeId"))
        for n in response.json()["data"]
    ]
    assert nodes == [
        ("plan", "router", "Plan", "plan-step", None),
        ("search", "tool", "search", "search-step", "plan"),
        ("answer", "", "answer", "answer-step", "plan"),
        ("answer", "", "answer", "answer-step", "search"),
    ]
    assert response.json()["data"][0]["spanId"] == spans[1]["spanId"]
    assert response.headers["Deprecation"] == "true"
    assert response.headers["Sunset"] == "Tue, 21 Oct 2026 00:00:00 GMT"
    assert response.headers["Link"] == f'</v1/traces/{trace}?fields=graph>; rel="successor-version"'


def test_the_trace_route_adds_the_graph_when_asked(client, two_apps):
    trace = payloads.trace_id()
    ingest(client, two_apps[0], _graph_trace(trace))
    graph = client.get(f"/v1/traces/{trace}/graph", headers=two_apps[0]).json()["data"]

    plain = client.get(f"/v1/traces/{trace}", headers=two_apps[0]).json()["data"]
    with_graph = client.get(
        f"/v1/traces/{trace}", params={"fields": "graph"}, headers=two_apps[0]
    ).json()["data"]

    assert "graph" not in plain
    assert with_graph == {**plain, "graph": graph}
    refused = client.get(f"/v1/traces/{trace}", params={"fields": "bogus"}, headers=two_apps[0])
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "invalid_query_params"


def test_trace_graph_of_another_apps_trace_is_not_found(client, two_apps):
    trace = payloads.trace_id()
    ingest(client, two_apps[0], _graph_trace(trace))
    response = client.get(f"/v1/traces/{trace}/graph", headers=two_apps[1])
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "trace_not_found"


# --- GET /v1/requests -------------------------------------------------------------------


def test_requests_are_the_model_calls_of_the_callers_app(client, two_apps, reference):
    start = time.time_ns()
    trace_a, spans_a = payloads.llm_trace(
        start_ns=start, user_id="ana", model="gpt-4o", input_tokens=200, output_tokens=20
    )
    spans_a[1]["attributes"] += payloads.attributes(
        {"agentmark.props": '{"q":"2+2"}', "agentmark.prompt_name": "math"}
    )
    trace_b, spans_b = payloads.llm_trace(start_ns=start + 10, user_id="bo", error=True)
    ingest(client, two_apps[0], spans_a + spans_b)
    _, other = payloads.llm_trace(start_ns=start + 20, user_id="ana")
    ingest(client, two_apps[1], other)

    response = client.get("/v1/requests", headers=two_apps[0])

    assert response.status_code == 200, response.text
    assert_reference_shape(reference, "/v1/requests", response)
    body = response.json()
    assert body["pagination"] == {"total": 2, "limit": 50, "offset": 0}
    assert [r["trace_id"] for r in body["data"]] == [trace_b, trace_a]  # newest first
    record = body["data"][1]
    assert record["id"] == spans_a[1]["spanId"]
    assert record["model_used"] == "gpt-4o"
    assert (record["prompt_tokens"], record["completion_tokens"]) == (200, 20)
    assert record["cost"] > 0
    assert record["user_id"] == "ana"  # from the root span of its trace
    assert record["props"] == '{"q":"2+2"}'
    assert record["prompt_name"] == "math"
    assert record["status"] == "OK"


def test_requests_filters(client, two_apps):
    start = time.time_ns()
    trace_a, spans_a = payloads.llm_trace(start_ns=start, user_id="ana", model="gpt-4o")
    trace_b, spans_b = payloads.llm_trace(start_ns=start + 10, user_id="bo", error=True)
    ingest(client, two_apps[0], spans_a + spans_b)

    def traces(**params):
        response = client.get("/v1/requests", params=params, headers=two_apps[0])
        assert response.status_code == 200, response.text
        return [record["trace_id"] for record in response.json()["data"]]

    assert traces(model="gpt-4o") == [trace_a]
    assert traces(status="ERROR") == [trace_b]
    assert traces(user_id="bo") == [trace_b]
    assert traces(sort_by="ts", sort_order="asc") == [trace_a, trace_b]
    assert traces(limit=1, offset=1) == [trace_a]
    assert traces(start_date="2000-01-01", end_date="2001-01-01") == []


@pytest.mark.parametrize(
    "params",
    [{"sort_by": "nonsense"}, {"status": "MAYBE"}, {"start_date": "yesterday"}, {"filter": "x"}],
)
def test_requests_refuse_bad_parameters(client, two_apps, params):
    response = client.get("/v1/requests", params=params, headers=two_apps[0])
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_query_params"


# --- GET /v1/config and /v1/score-configs -----------------------------------------------


def test_config_is_not_found_until_published(client, two_apps, reference):
    response = client.get("/v1/config", headers=two_apps[0])
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "config_not_found"

    publish_config(client, two_apps[0])
    response = client.get("/v1/config", headers=two_apps[0])

    assert response.status_code == 200, response.text
    assert_reference_shape(reference, "/v1/config", response)
    assert response.json()["data"] == {"commit_sha": None, "config": CONFIG}
    # Another app has its own (none).
    assert client.get("/v1/config", headers=two_apps[1]).status_code == 404


def test_the_config_is_no_prompt(client, two_apps):
    publish_config(client, two_apps[0])
    response = client.get("/v1/prompts", headers=two_apps[0])
    assert "agentmark.json" not in response.json()["data"]["paths"]


def test_score_configs_project_the_scores_map(client, two_apps, reference):
    publish_config(client, two_apps[0])

    response = client.get("/v1/score-configs", headers=two_apps[0])

    assert response.status_code == 200, response.text
    assert_reference_shape(reference, "/v1/score-configs", response)
    body = response.json()
    assert body["pagination"] == {"total": 3, "limit": 50, "offset": 0}
    assert body["data"] == [
        {
            "id": "agentmark.json:accuracy",
            "name": "accuracy",
            "commit_sha": "",
            "data_type": "numeric",
            "min": 0,
            "max": 1,
        },
        {
            "id": "agentmark.json:correct",
            "name": "correct",
            "commit_sha": "",
            "data_type": "boolean",
        },
        {
            "id": "agentmark.json:tone",
            "name": "tone",
            "commit_sha": "",
            "data_type": "categorical",
            "description": "How it sounds",
            "categories": [{"label": "kind", "value": 1}, {"label": "rude", "value": 0}],
        },
    ]
    page = client.get("/v1/score-configs", params={"limit": 1, "offset": 2}, headers=two_apps[0])
    assert [config["name"] for config in page.json()["data"]] == ["tone"]

    one = client.get("/v1/score-configs/tone", headers=two_apps[0])
    assert one.status_code == 200
    assert_reference_shape(reference, "/v1/score-configs/{name}", one)
    assert one.json()["data"] == body["data"][2]


def test_score_configs_of_another_app_are_not_seen(client, two_apps, reference):
    publish_config(client, two_apps[0])

    listed = client.get("/v1/score-configs", headers=two_apps[1])
    assert listed.status_code == 200
    assert_reference_shape(reference, "/v1/score-configs", listed)
    assert listed.json() == {"data": [], "pagination": {"total": 0, "limit": 50, "offset": 0}}
    one = client.get("/v1/score-configs/tone", headers=two_apps[1])
    assert one.status_code == 404
    assert one.json()["error"]["code"] == "score_config_not_found"


def test_an_entry_without_a_known_type_or_categories_is_left_out(client, two_apps):
    publish_config(client, two_apps[0])
    for name in ("unknown-kind", "no-categories"):
        response = client.get(f"/v1/score-configs/{name}", headers=two_apps[0])
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "score_config_not_found"


# --- GET /v1/pricing and /v1/capabilities (public) --------------------------------------


def test_pricing_is_public_per_thousand_tokens_and_cacheable(client, reference):
    response = client.get("/v1/pricing")

    assert response.status_code == 200, response.text
    assert_reference_shape(reference, "/v1/pricing", response)
    assert response.headers["Cache-Control"] == "public, max-age=86400"
    # prices.json has gpt-4o at 2.5 and 10 USD per million tokens.
    assert response.json()["gpt-4o"] == {"promptPrice": 0.0025, "completionPrice": 0.01}


def test_pricing_includes_the_operators_overrides(settings):
    from fastapi.testclient import TestClient

    from agentmark_gateway.app import create_app

    custom = settings.model_copy(
        update={"model_prices": {"in-house-llm": {"input": 1.0, "output": 3.0}}}
    )
    with TestClient(create_app(custom)) as client:
        prices = client.get("/v1/pricing").json()
    assert prices["in-house-llm"] == {"promptPrice": 0.001, "completionPrice": 0.003}


def test_capabilities_answer_what_the_clients_read(client, reference):
    response = client.get("/v1/capabilities")

    assert response.status_code == 200
    assert_reference_shape(reference, "/v1/capabilities", response)
    body = response.json()
    assert body["target"] == "cloud"
    assert body["url"] == "http://localhost:9418"
    endpoints = body["endpoints"]
    for served in ("traces", "spans", "sessions", "scores", "score_analytics", "metrics"):
        assert endpoints[served] is True
    assert endpoints["pricing"] is True
    assert endpoints["datasets"] is True and endpoints["prompts"] is True


# --- AgentMark Cloud only -----------------------------------------------------------------

CLOUD_ONLY = [
    ("GET", "/v1/deployments", "Deployments are AgentMark Cloud"),
    ("GET", "/v1/deployments/dep_1", "Deployments are AgentMark Cloud"),
    ("GET", "/v1/apps/app_1/git", "git repository"),
    ("GET", "/v1/apps/app_1/git/branches", "git repository"),
    ("GET", "/v1/apps/app_1/git/repositories", "git repository"),
    ("POST", "/v1/apps/app_1/git/connect", "git repository"),
    ("POST", "/v1/apps/app_1/git/link", "git repository"),
    ("DELETE", "/v1/apps/app_1/git/link", "git repository"),
]


@pytest.mark.parametrize(
    ("method", "path", "why"), CLOUD_ONLY, ids=[f"{m} {p}" for m, p, _ in CLOUD_ONLY]
)
def test_cloud_only_routes_answer_501_saying_why(client, two_apps, method, path, why):
    for headers in ({}, two_apps[0]):
        response = client.request(method, path, headers=headers)
        assert response.status_code == 501, response.text
        error = response.json()["error"]
        assert error["code"] == "not_implemented"
        assert why in error["message"]
        assert "agentmark-gateway templates push" in error["message"]
    # Out of the document, so no client (AgentMark's MCP server) offers it as a tool.
    paths = client.get("/v1/openapi.json").json()["paths"]
    assert not [p for p in paths if "/git" in p or "deployments" in p]
