"""Retention: traces past their app's window go with their spans, tags and scores, one
small commit at a time; recent ones, other apps' and those kept for ever stay."""

from __future__ import annotations

import time
from typing import Any

import pytest
from sqlalchemy import event, func, select
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlalchemy.orm import Session

from agentmark_gateway import retention
from agentmark_gateway.traces.models import Span, Trace, TraceTag
from tests.fixtures.otlp import payloads

DAY_NS = 86_400 * 1_000_000_000
NOW = time.time()


def days_ago(days: float) -> int:
    return int(NOW * 1_000_000_000 - days * DAY_NS)


class Tenant:
    """An app with a full-access key, sending traces and scores through the API."""

    def __init__(self, client: Any, admin: Any, key_headers: Any, **app: Any) -> None:
        self.client = client
        response = client.post(
            "/v1/apps", json={"name": f"app-{time.time_ns()}", **app}, headers=admin.headers
        )
        assert response.status_code == 201, response.text
        self.app_id = response.json()["data"]["id"]
        self.headers = key_headers(admin.create_key(self.app_id, role="full-access"))

    def trace(self, age_days: float, spans: int = 3, trace: str | None = None) -> list[str]:
        """A trace started ``age_days`` ago, scored on itself and on its first span;
        returns its id and its span ids."""
        trace = trace or payloads.trace_id()
        start = days_ago(age_days)
        ids = [payloads.span_id() for _ in range(spans)]
        payloads.post(
            self.client,
            self.headers,
            [
                payloads.span(
                    trace,
                    span_id,
                    name=f"step-{i}",
                    start_ns=start + i * payloads.MS,
                    attrs={"agentmark.tags": '["kept-or-not"]'},
                )
                for i, span_id in enumerate(ids)
            ],
        )
        for resource in (trace, ids[0]):
            body = {"resource_id": resource, "name": "accuracy", "score": 1}
            response = self.client.post("/v1/scores", json=body, headers=self.headers)
            assert response.status_code == 201, response.text
        return [trace, *ids]

    def has_trace(self, trace: str) -> bool:
        response = self.client.get(f"/v1/traces/{trace}", headers=self.headers)
        assert response.status_code in (200, 404), response.text
        return response.status_code == 200

    def span_count(self, trace: str) -> int:
        response = self.client.get(f"/v1/traces/{trace}/spans", headers=self.headers)
        if response.status_code == 404:
            return 0
        assert response.status_code == 200, response.text
        return int(response.json()["pagination"]["total"])

    def scored(self, resource: str) -> int:
        response = self.client.get(
            "/v1/scores", params={"resource_id": resource}, headers=self.headers
        )
        assert response.status_code == 200, response.text
        return int(response.json()["pagination"]["total"])


@pytest.fixture
def tenant(client, admin, key_headers):
    def make(**app: Any) -> Tenant:
        return Tenant(client, admin, key_headers, **app)

    return make


def prune(client: Any, default_days: int, **options: Any) -> retention.Pruned:
    gateway = client.app.state.gateway

    async def work() -> retention.Pruned:
        return await retention.prune(
            gateway.sessionmaker, default_days, now=NOW, pause=0, **options
        )

    result: retention.Pruned = client.portal.call(work)
    return result


def count(client: Any, query: Any) -> int:
    gateway = client.app.state.gateway

    async def work() -> int:
        async with gateway.sessionmaker() as session:
            return int(await session.scalar(query) or 0)

    result: int = client.portal.call(work)
    return result


def test_expired_traces_go_with_their_spans_tags_and_scores_and_recent_ones_stay(client, tenant):
    shop = tenant()
    old, *old_spans = shop.trace(age_days=40, spans=5)
    recent, *recent_spans = shop.trace(age_days=1)

    pruned = prune(client, 30, batch_rows=2)

    assert (pruned.traces, pruned.spans, pruned.scores) == (1, 5, 2)
    assert not shop.has_trace(old)
    assert shop.span_count(old) == 0
    assert shop.scored(old) == 0 and shop.scored(old_spans[0]) == 0
    tags = select(func.count()).select_from(TraceTag).where(TraceTag.trace_id == old)
    assert count(client, tags) == 0
    assert shop.has_trace(recent)
    assert shop.span_count(recent) == 3
    assert shop.scored(recent) == 1 and shop.scored(recent_spans[0]) == 1


def test_another_apps_data_is_untouched_even_under_the_same_trace_id(client, tenant):
    pruned_app = tenant()
    kept_app = tenant(retention_days=0)
    trace = pruned_app.trace(age_days=100)[0]
    kept_app.trace(age_days=100, trace=trace)

    prune(client, 30)

    assert not pruned_app.has_trace(trace)
    assert kept_app.has_trace(trace)
    assert kept_app.span_count(trace) == 3
    assert kept_app.scored(trace) == 1
    spans_of_trace = select(func.count()).select_from(Span).where(Span.trace_id == trace)
    assert count(client, spans_of_trace) == 3


def test_an_apps_own_retention_wins_over_the_default(client, admin, tenant):
    longer = tenant(retention_days=30)
    default = tenant()
    for_ever = tenant()
    response = client.patch(
        f"/v1/apps/{for_ever.app_id}", json={"retention_days": 0}, headers=admin.headers
    )
    assert response.status_code == 200, response.text
    traces = {t: t.trace(age_days=20)[0] for t in (longer, default, for_ever)}
    ancient = for_ever.trace(age_days=3000)[0]

    prune(client, 5)

    assert longer.has_trace(traces[longer])
    assert not default.has_trace(traces[default])
    assert for_ever.has_trace(traces[for_ever]) and for_ever.has_trace(ancient)


def test_zero_keeps_everything(client, tenant):
    shop = tenant()
    ancient = shop.trace(age_days=3000)[0]

    assert prune(client, 0) == retention.Pruned()
    assert shop.has_trace(ancient) and shop.span_count(ancient) == 3


def test_each_batch_is_committed_on_its_own_and_the_roll_up_goes_last(client, tenant):
    shop = tenant()
    old = shop.trace(age_days=40, spans=5)[0]
    gateway = client.app.state.gateway
    commits: list[int] = []

    class CountingSession(Session):
        pass

    event.listen(CountingSession, "after_commit", lambda session: commits.append(1))
    sessionmaker = async_sessionmaker(
        gateway.engine, expire_on_commit=False, sync_session_class=CountingSession
    )

    async def first_step() -> retention.Pruned | None:
        async with sessionmaker() as session, session.begin():
            return await retention.prune_step(
                session, shop.app_id, retention.cutoff_ns(30, NOW), batch_rows=2
            )

    step = client.portal.call(first_step)
    # Seen from outside: two spans gone for good, the trace still listed.
    assert step is not None and (step.traces, step.spans) == (0, 2)
    assert shop.span_count(old) == 3
    assert shop.has_trace(old)

    async def the_rest() -> retention.Pruned:
        return await retention.prune_app(
            sessionmaker, shop.app_id, retention.cutoff_ns(30, NOW), batch_rows=2, pause=0
        )

    rest = client.portal.call(the_rest)
    assert (rest.traces, rest.spans, step.scores + rest.scores) == (1, 3, 2)
    # Spans 2 + 2 + 1, then the roll-up, then a look that finds nothing left: five
    # commits, none holding more than two spans.
    assert len(commits) == 5
    assert not shop.has_trace(old)
    assert count(client, select(func.count()).select_from(Trace)) == 0


def test_a_pass_rests_nine_times_as_long_as_each_transaction_took():
    assert retention.rest_after(0.04) == pytest.approx(0.36)
    assert retention.rest_after(0.5) == pytest.approx(4.5)  # a busy machine: it backs off
    assert retention.rest_after(0.001) == retention.PAUSE_SECONDS
    assert retention.rest_after(0.5, pause=0) == 0  # tests run back to back
