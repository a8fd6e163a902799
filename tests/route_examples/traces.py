"""Example requests for the trace, span and session routes (see ``__init__.py`` here)."""

from __future__ import annotations

import json

from tests.fixtures.otlp import payloads
from tests.route_examples.base import Context, Example, ExampleRequest

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
ROOT_SPAN = "00f067aa0ba902b7"
SESSION_ID = "example-session"


def _spans() -> list[dict]:
    _, spans = payloads.llm_trace(
        trace=TRACE_ID, session_id=SESSION_ID, user_id="example-user", tags=["example"]
    )
    spans[0]["spanId"] = ROOT_SPAN
    spans[1]["parentSpanId"] = ROOT_SPAN
    return spans


def _seeded(ctx: Context) -> None:
    # Ingest is idempotent: seeding before every call stores the trace once.
    response = ctx.client.post(
        "/v1/traces", json=payloads.request(_spans()), headers=ctx.full_headers
    )
    assert response.status_code == 200, response.text


def _ingest(ctx: Context) -> ExampleRequest:
    return ExampleRequest(
        "POST",
        "/v1/traces",
        content=json.dumps(payloads.request(_spans())).encode(),
        headers={"Content-Type": "application/json"},
    )


def _get(path: str, **params: object) -> Example:
    def example(ctx: Context) -> ExampleRequest:
        _seeded(ctx)
        return ExampleRequest("GET", path, params=dict(params))

    return example


EXAMPLES: dict[tuple[str, str], Example] = {
    ("POST", "/v1/traces"): _ingest,
    ("GET", "/v1/traces"): _get("/v1/traces", tag="example", sort="-cost"),
    ("GET", "/v1/traces/{traceId}"): _get(f"/v1/traces/{TRACE_ID}"),
    ("GET", "/v1/traces/{traceId}/spans"): _get(f"/v1/traces/{TRACE_ID}/spans"),
    ("GET", "/v1/traces/{traceId}/spans/{spanId}"): _get(
        f"/v1/traces/{TRACE_ID}/spans/{ROOT_SPAN}"
    ),
    ("GET", "/v1/spans"): _get("/v1/spans", type="GENERATION", session_id=SESSION_ID),
    ("GET", "/v1/sessions"): _get("/v1/sessions", search="example"),
    ("GET", "/v1/sessions/{sessionId}/traces"): _get(f"/v1/sessions/{SESSION_ID}/traces"),
}
