"""The span rows ingest writes through the driver are the rows SQLAlchemy would have written.

store_spans sends spans as one plain SQL statement per batch (multi-row VALUES on
SQLite, unnest() arrays on PostgreSQL); these tests hold it to the ORM: the same
columns for a varied batch, nothing added by a re-send, batches past SQLite's
statement size. They run on whichever database the suite runs on.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import func, insert, select

from agentmark_gateway.db.base import utcnow
from agentmark_gateway.pricing import price_table
from agentmark_gateway.traces import derive, ingest
from agentmark_gateway.traces.ingest import store_spans
from agentmark_gateway.traces.models import Span, Trace, TraceTag
from agentmark_gateway.traces.otlp import OtlpSpan, decode_json
from tests.fixtures.otlp import payloads
from tests.fixtures.otlp.payloads import MS, at

# Compared column by column; id, app_id and received_at differ by construction.
COMPARED = [c.name for c in Span.__table__.columns if c.name not in ("id", "app_id", "received_at")]


def _varied_batch() -> list[OtlpSpan]:
    """Spans that exercise every column: events, links, unicode, numbers, tags, no model."""
    trace = payloads.trace_id()
    other = payloads.trace_id()
    root = payloads.span_id()
    start = at("2025-07-01T00:00:00Z")
    event = {
        "name": "retry",
        "timeUnixNano": str(start + MS),
        "attributes": payloads.attributes({"attempt": 2, "ok": False}),
    }
    spans = [
        payloads.span(
            trace,
            root,
            name="agent run ✓",
            start_ns=start,
            attrs={
                "agentmark.trace_name": "checkout",
                "agentmark.tags": json.dumps(["beta", "eu"]),
                "agentmark.metadata.plan": "pro",
                "agentmark.input": {"question": "größe?", "n": [1, 2.5]},
            },
            events=[event],
        ),
        payloads.span(
            trace,
            name="llm call",
            parent=root,
            start_ns=start + 2 * MS,
            status=2,
            message="rate limited",
            kind=3,
            attrs={
                "gen_ai.request.model": "gpt-4o-mini",
                "gen_ai.usage.input_tokens": 1200,
                "gen_ai.usage.output_tokens": 300,
                "gen_ai.usage.cost": "0.25",
                "agentmark.output": "日本語の答え",
                "agentmark.span.kind": "LLM",
            },
        ),
        payloads.span(
            other,
            name="tool",
            start_ns=start + 5 * MS,
            attrs={
                "openinference.span.kind": "TOOL",
                "llm.token_count.prompt": 7,
                "session.id": "",  # empty: hides the resource's session id
                "agentmark.prompt_name": "lookup",
            },
        ),
    ]
    spans[2]["links"] = [{"traceId": trace, "spanId": root, "traceState": "k=v"}]
    document = payloads.request(
        spans,
        resource={"agentmark.user_id": "u-7", "session.id": "s-resource", "host.cpu": 4},
    )
    return decode_json(json.dumps(document).encode())


def _rows(spans: list[OtlpSpan], app_id: str) -> list[dict[str, Any]]:
    prices = price_table()
    return [derive.row_of(span, app_id=app_id, prices=prices) for span in spans]


def _run(client, work):
    async def go():
        async with client.app.state.gateway.sessionmaker() as session:
            return await work(session)

    return client.portal.call(go)


def _stored(client, app_id: str) -> list[dict[str, Any]]:
    async def read(session):
        result = await session.execute(
            select(Span).where(Span.app_id == app_id).order_by(Span.trace_id, Span.span_id)
        )
        return [{name: getattr(span, name) for name in COMPARED} for span in result.scalars()]

    return _run(client, read)


def _count(client, model, app_id: str) -> int:
    async def count(session):
        return await session.scalar(select(func.count()).where(model.app_id == app_id))

    return _run(client, count)


def _traces(client, app_id: str) -> list[tuple[Any, ...]]:
    async def read(session):
        result = await session.execute(
            select(Trace.trace_id, Trace.span_count, Trace.input_tokens, Trace.cost)
            .where(Trace.app_id == app_id)
            .order_by(Trace.trace_id)
        )
        return [tuple(row) for row in result]

    return _run(client, read)


def _store(client, app_id: str, spans: list[OtlpSpan]) -> None:
    async def store(session):
        await store_spans(session, app_id=app_id, spans=spans, prices=price_table())

    _run(client, store)


def test_the_driver_insert_stores_what_the_orm_stores(client, admin):
    spans = _varied_batch()
    bulk_app, orm_app = admin.create_app(), admin.create_app()

    _store(client, bulk_app, spans)

    async def orm_insert(session):
        rows = [{**row, "received_at": utcnow()} for row in _rows(spans, orm_app)]
        await session.execute(insert(Span), rows)
        await session.commit()

    _run(client, orm_insert)

    bulk, orm = _stored(client, bulk_app), _stored(client, orm_app)
    assert len(bulk) == 3
    assert bulk == orm
    assert bulk[0]["events"] or bulk[1]["events"] or bulk[2]["events"]


def test_the_derived_columns_come_through_the_driver_insert(client, admin):
    app_id = admin.create_app()
    _store(client, app_id, _varied_batch())

    by_name = {row["name"]: row for row in _stored(client, app_id)}
    llm, tool, root = by_name["llm call"], by_name["tool"], by_name["agent run ✓"]
    assert (llm["model"], llm["input_tokens"], llm["cost"]) == ("gpt-4o-mini", 1200, 0.25)
    assert llm["output"] == "日本語の答え" and llm["span_type"] == "llm"
    assert root["tags"] == ["beta", "eu"] and root["trace_name"] == "checkout"
    assert json.loads(root["input"]) == {"question": "größe?", "n": [1, 2.5]}
    assert root["events"][0]["attributes"] == {"attempt": 2, "ok": False}
    assert tool["links"][0]["trace_state"] == "k=v"
    assert tool["session_id"] is None  # the span's empty session.id hides the resource's
    assert root["session_id"] == "s-resource" and root["user_id"] == "u-7"
    assert root["resource_attributes"]["host.cpu"] == 4


def test_a_resent_batch_adds_no_row_and_no_count(client, admin):
    app_id = admin.create_app()
    spans = _varied_batch()
    _store(client, app_id, spans)
    before = (_stored(client, app_id), _traces(client, app_id), _count(client, TraceTag, app_id))

    _store(client, app_id, spans)
    _store(client, app_id, list(reversed(spans)))

    after = (_stored(client, app_id), _traces(client, app_id), _count(client, TraceTag, app_id))
    assert after == before
    assert sorted(span_count for _, span_count, _, _ in after[1]) == [1, 2]


def test_a_batch_half_stored_counts_only_its_new_spans(client, admin):
    app_id = admin.create_app()
    trace = payloads.trace_id()
    start = at("2025-07-01T00:00:00Z")
    spans = [
        payloads.span(
            trace,
            name=f"call {n}",
            start_ns=start + n * MS,
            attrs={"gen_ai.request.model": "gpt-4o-mini", "gen_ai.usage.input_tokens": 10},
        )
        for n in range(6)
    ]
    _store(client, app_id, decode_json(json.dumps(payloads.request(spans[:4])).encode()))
    _store(client, app_id, decode_json(json.dumps(payloads.request(spans[2:])).encode()))

    [(_, span_count, input_tokens, _)] = _traces(client, app_id)
    assert (span_count, input_tokens) == (6, 60)
    assert _count(client, Span, app_id) == 6


@pytest.mark.slow
def test_a_batch_larger_than_one_sqlite_statement_is_stored_whole(client, admin):
    app_id = admin.create_app()
    trace = payloads.trace_id()
    start = at("2025-07-01T00:00:00Z")
    size = ingest._SQLITE_ROWS_PER_STATEMENT * 2 + 7
    spans = [payloads.span(trace, name="s", start_ns=start + n) for n in range(size)]
    decoded = decode_json(json.dumps(payloads.request(spans)).encode())

    _store(client, app_id, decoded)
    _store(client, app_id, decoded)

    assert _count(client, Span, app_id) == size
    [(_, span_count, _, _)] = _traces(client, app_id)
    assert span_count == size
