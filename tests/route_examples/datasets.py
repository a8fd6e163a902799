"""Example requests for /v1/datasets (see base.py), and a helper that stores spans."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select
from starlette.routing import compile_path

from agentmark_gateway.datasets.router import FROM_SPANS_PATH, FROM_TRACES_PATH, ROWS_PATH
from agentmark_gateway.traces.models import Span
from tests.route_examples.base import Context, Example, ExampleRequest

TRACE_ID = "5b8aa5a2d2c872e8321cf37308d69df2"
SPAN_ID = "051581bf3cb55c13"


def seed_span(client: TestClient, app_id: str, **fields: Any) -> None:
    """Stores one span straight into the spans table, as the ingest route would (once)."""
    values: dict[str, Any] = {
        "trace_id": TRACE_ID,
        "span_id": SPAN_ID,
        "name": "example",
        "start_time_ns": 1_700_000_000_000_000_000,
        "end_time_ns": 1_700_000_001_000_000_000,
        **fields,
    }
    gateway = client.app.state.gateway  # type: ignore[attr-defined]

    async def insert() -> None:
        async with gateway.sessionmaker() as session:
            stored = await session.scalar(
                select(Span.id).where(
                    Span.app_id == app_id,
                    Span.trace_id == values["trace_id"],
                    Span.span_id == values["span_id"],
                )
            )
            if stored is None:
                session.add(Span(app_id=app_id, **values))
                await session.commit()

    client.portal.call(insert)  # type: ignore[union-attr]


def _seed(ctx: Context) -> None:
    seed_span(ctx.client, ctx.app_id, input='{"question": "2+2?"}', output="4")


def list_datasets(ctx: Context) -> ExampleRequest:
    return ExampleRequest("GET", "/v1/datasets")


def list_rows(ctx: Context) -> ExampleRequest:
    response = ctx.client.post(
        "/v1/datasets/evals%2Fexample/rows", json={"input": {"q": 1}}, headers=ctx.full_headers
    )
    assert response.status_code == 201, response.text
    return ExampleRequest("GET", "/v1/datasets/evals%2Fexample/rows")


def append_row(ctx: Context) -> ExampleRequest:
    return ExampleRequest("POST", "/v1/datasets/evals%2Fexample/rows", json={"input": {"q": 1}})


def import_from_traces(ctx: Context) -> ExampleRequest:
    _seed(ctx)
    return ExampleRequest(
        "POST", "/v1/datasets/example/rows/from-traces", json={"trace_ids": [TRACE_ID]}
    )


def import_from_spans(ctx: Context) -> ExampleRequest:
    _seed(ctx)
    return ExampleRequest(
        "POST", "/v1/datasets/example/rows/from-spans", json={"span_ids": [SPAN_ID]}
    )


def _both_spellings(path: str) -> tuple[str, str]:
    # The route's path keeps the ``:path`` convertor; OpenAPI and docs drop it.
    # Offer the example under both, whichever a test keys routes by.
    return path, compile_path(path)[1]


EXAMPLES: dict[tuple[str, str], Example] = {("GET", "/v1/datasets"): list_datasets}
for _method, _path, _example in (
    ("GET", ROWS_PATH, list_rows),
    ("POST", ROWS_PATH, append_row),
    ("POST", FROM_TRACES_PATH, import_from_traces),
    ("POST", FROM_SPANS_PATH, import_from_spans),
):
    for _spelling in _both_spellings(_path):
        EXAMPLES[(_method, _spelling)] = _example
