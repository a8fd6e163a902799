"""A trace's figures stay right when its spans arrive over several batches,
out of order, re-sent, or from concurrent requests."""

from __future__ import annotations

import asyncio
import json

import pytest

from agentmark_gateway.pricing import price_table
from agentmark_gateway.traces.ingest import store_spans
from agentmark_gateway.traces.otlp import decode_json
from tests.fixtures.otlp import payloads
from tests.fixtures.otlp.payloads import MS, at


@pytest.fixture
def app_key(admin):
    return admin.create_key(admin.create_app(), role="full-access")


@pytest.fixture
def headers(app_key, key_headers):
    return key_headers(app_key)


def _trace(client, headers, trace_id):
    response = client.get("/v1/traces", params={"limit": 1000}, headers=headers)
    return next(t for t in response.json()["data"] if t["id"] == trace_id)


def _spans_of_one_trace(n: int) -> tuple[str, list[dict]]:
    trace = payloads.trace_id()
    start = at("2025-07-01T00:00:00Z")
    root = payloads.span_id()
    spans = [
        payloads.span(
            trace,
            root,
            name="root",
            start_ns=start,
            duration_ms=1000,
            attrs={"agentmark.trace_name": "batched", "agentmark.tags": '["root-tag"]'},
        )
    ]
    for i in range(n):
        spans.append(
            payloads.span(
                trace,
                name=f"child-{i}",
                parent=root,
                start_ns=start + (i + 1) * MS,
                duration_ms=5,
                status=2 if i == 3 else 1,
                attrs={
                    "gen_ai.request.model": "gpt-4o-mini",
                    "gen_ai.usage.input_tokens": 10,
                    "gen_ai.usage.output_tokens": 1,
                    "agentmark.tags": json.dumps([f"t{i % 2}"]),
                    **({"agentmark.user_id": "late-user"} if i == 7 else {}),
                },
            )
        )
    return trace, spans


def test_a_trace_sent_children_first_in_several_batches_adds_up(client, headers):
    trace_id, spans = _spans_of_one_trace(9)
    root, children = spans[0], spans[1:]
    for batch in (children[:3], children[3:6], children[6:], [root]):
        payloads.post(client, headers, batch)

    trace = _trace(client, headers, trace_id)
    assert trace["span_count"] == 10
    assert trace["name"] == "batched"
    assert (trace["input_tokens"], trace["output_tokens"]) == (90, 9)
    assert trace["status"] == "ERROR"
    assert trace["start"] == "2025-07-01T00:00:00Z"
    assert trace["latency_ms"] == 1000.0
    assert trace["user_id"] == "late-user"
    assert trace["tags"] == ["root-tag", "t0", "t1"]
    assert trace["cost"] == pytest.approx(9 * (10 * 0.15 + 0.6) / 1_000_000)


def test_before_the_root_arrives_the_earliest_span_names_the_trace(client, headers):
    trace_id, spans = _spans_of_one_trace(3)
    payloads.post(client, headers, [spans[2], spans[3]])
    assert _trace(client, headers, trace_id)["name"] == "child-1"
    payloads.post(client, headers, [spans[1]])
    assert _trace(client, headers, trace_id)["name"] == "child-0"
    payloads.post(client, headers, [spans[0]])
    assert _trace(client, headers, trace_id)["name"] == "batched"


def test_overlapping_resends_count_each_span_once(client, headers):
    trace_id, spans = _spans_of_one_trace(6)
    for batch in (spans[:4], spans[2:], spans, spans[5:]):
        payloads.post(client, headers, batch)
    trace = _trace(client, headers, trace_id)
    assert trace["span_count"] == 7
    assert trace["input_tokens"] == 60
    metrics = client.get(
        "/v1/metrics",
        params={"start_date": "2025-07-01", "end_date": "2025-07-01"},
        headers=headers,
    )
    assert metrics.json()["data"]["summary"]["input_tokens"] == 60


def test_concurrent_batches_of_one_trace_count_each_span_once(client, app_key, headers):
    trace_id, spans = _spans_of_one_trace(40)
    gateway = client.app.state.gateway
    prices = price_table()
    # Four overlapping batches, in different orders, stored at the same time.
    batches = [spans[:25], spans[15:], list(reversed(spans[5:35])), spans[::2]]

    async def store(batch):
        decoded = decode_json(json.dumps(payloads.request(batch)).encode())
        async with gateway.sessionmaker() as session:
            await store_spans(session, app_id=app_key["app_id"], spans=decoded, prices=prices)

    async def all_at_once():
        await asyncio.gather(*(store(batch) for batch in batches))

    client.portal.call(all_at_once)

    trace = _trace(client, headers, trace_id)
    assert trace["span_count"] == 41
    assert trace["input_tokens"] == 400
    spans_listed = client.get(f"/v1/traces/{trace_id}/spans", headers=headers).json()
    assert spans_listed["pagination"]["total"] == 41
