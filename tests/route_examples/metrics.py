"""Example request for the metrics route (see ``__init__.py`` here)."""

from __future__ import annotations

from tests.fixtures.otlp import payloads
from tests.route_examples.base import Context, Example, ExampleRequest


def _metrics(ctx: Context) -> ExampleRequest:
    _, spans = payloads.llm_trace(start_ns=payloads.at("2025-06-01T12:00:00Z"))
    response = ctx.client.post("/v1/traces", json=payloads.request(spans), headers=ctx.full_headers)
    assert response.status_code == 200, response.text
    return ExampleRequest(
        "GET",
        "/v1/metrics",
        params={"start_date": "2025-06-01", "end_date": "2025-06-02", "bucket": "day"},
    )


EXAMPLES: dict[tuple[str, str], Example] = {("GET", "/v1/metrics"): _metrics}
