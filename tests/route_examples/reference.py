"""Example requests for the rest of the reference API and the old SDK's routes."""

from __future__ import annotations

import json
import time

from tests.fixtures.otlp import legacy_rows, payloads
from tests.route_examples.base import Context, Example, ExampleRequest

TRACE_ID = "5b8efff798038103d269b633813fc60c"
CONFIG = {"scores": {"accuracy": {"type": "numeric", "min": 0, "max": 1}}}


def _seed_trace(ctx: Context) -> None:
    _, spans = payloads.llm_trace(trace=TRACE_ID, user_id="example-user")
    response = ctx.client.post("/v1/traces", json=payloads.request(spans), headers=ctx.full_headers)
    assert response.status_code == 200, response.text


def _seed_config(ctx: Context) -> None:
    response = ctx.client.put(
        "/v1/templates",
        params={"path": "agentmark.json"},
        content=json.dumps(CONFIG).encode(),
        headers={**ctx.full_headers, "Content-Type": "application/json"},
    )
    assert response.status_code in (200, 201), response.text


def _graph(ctx: Context) -> ExampleRequest:
    _seed_trace(ctx)
    return ExampleRequest("GET", f"/v1/traces/{TRACE_ID}/graph")


def _requests(ctx: Context) -> ExampleRequest:
    _seed_trace(ctx)
    return ExampleRequest("GET", "/v1/requests", params={"user_id": "example-user"})


def _config(path: str) -> Example:
    def example(ctx: Context) -> ExampleRequest:
        _seed_config(ctx)
        return ExampleRequest("GET", path)

    return example


def _export_traces(ctx: Context) -> ExampleRequest:
    rows = [
        legacy_rows.row(
            "c2ef3bb1-44a5-4c3e-9d2b-0d3e5c7a9f10", "1111111111111111", start_ns=time.time_ns()
        )
    ]
    return ExampleRequest(
        "POST",
        "/v1/export-traces",
        content=json.dumps(rows).encode(),
        headers={"Content-Type": "application/json"},
    )


EXAMPLES: dict[tuple[str, str], Example] = {
    ("GET", "/v1/traces/{traceId}/graph"): _graph,
    ("GET", "/v1/requests"): _requests,
    ("GET", "/v1/config"): _config("/v1/config"),
    ("GET", "/v1/score-configs"): _config("/v1/score-configs"),
    ("GET", "/v1/score-configs/{name}"): _config("/v1/score-configs/accuracy"),
    ("POST", "/v1/export-traces"): _export_traces,
    ("POST", "/v1/score"): lambda ctx: ExampleRequest(
        "POST",
        "/v1/score",
        json={"resourceId": TRACE_ID, "name": "accuracy", "score": 1, "label": "good"},
    ),
}
