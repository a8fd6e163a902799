"""Usage, cost, token and latency figures of an app, computed from its spans.

A request is a trace: it succeeded unless one of its spans failed, its latency
is its duration and it falls in the range (and in a bucket) by its start. Costs
were fixed per span at ingest (see pricing.py). By model, a request is a call:
a span naming the model, in one of those traces.

Percentiles are nearest rank (the smallest duration with at least p% of the
durations at or below it), computed by the database with window functions: the
same SQL and the same figures on SQLite, which has no percentile function, and
PostgreSQL (whose percentile_cont would interpolate, and differ).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, case, func, literal_column, select
from sqlalchemy.ext.asyncio import AsyncSession

from agentmark_gateway.metrics.schemas import (
    Bucket,
    MetricsPoint,
    MetricsReport,
    MetricsSummary,
    ModelMetrics,
)
from agentmark_gateway.traces import derive, rollup
from agentmark_gateway.traces.filters import STATUS_CODES, Status, TraceFilters
from agentmark_gateway.traces.models import Span
from agentmark_gateway.traces.times import moment, to_ns

BUCKET_NS: dict[str, int] = {"hour": 3_600 * 10**9, "day": 86_400 * 10**9}
MAX_BUCKETS = 10_000
# The by-model table's length: models are names the SDK sends, so their number is bounded here.
MAX_MODELS = 100
_ERROR = STATUS_CODES[Status.ERROR]


def bucket_count(start: datetime, end: datetime, bucket: Bucket) -> int:
    size = BUCKET_NS[bucket]
    return to_ns(end) // size - to_ns(start) // size + 1


def _figures(c: Any) -> tuple[Any, ...]:
    """Aggregates over rows of the trace roll-up."""
    return (
        func.count().label("requests"),
        func.coalesce(func.sum(case((c.status_code == _ERROR, 1), else_=0)), 0).label("errors"),
        func.coalesce(func.sum(c.cost), 0.0).label("cost"),
        func.coalesce(func.sum(c.input_tokens), 0).label("input_tokens"),
        func.coalesce(func.sum(c.output_tokens), 0).label("output_tokens"),
        func.coalesce(func.sum(c.duration_ns), 0).label("duration_ns"),
        func.count(func.distinct(c.user_id)).label("users"),
    )


def _ratio(total: float, count: int) -> float:
    return total / count if count else 0.0


def _percentiles(
    durations: ColumnElement[int], group: ColumnElement[Any] | None = None
) -> Select[Any]:
    """p50 and p95 of ``durations`` (nanoseconds), per ``group`` when one is given.

    Each duration is numbered in order within its group; the p-th percentile is the
    one numbered ceil(p * n), written in integers (ceil(95n / 100) = (95n + 99) // 100)
    so both databases compute it alike. The query's FROM is that of ``durations``.
    """
    ranked = select(
        (group if group is not None else literal_column("0")).label("grp"),
        durations.label("duration"),
        func.row_number().over(partition_by=group, order_by=durations).label("rank"),
        func.count().over(partition_by=group).label("n"),
    ).subquery("ranked")
    r = ranked.c
    return select(
        r.grp,
        func.max(case((r.rank == (r.n + 1) // 2, r.duration))).label("p50"),
        func.max(case((r.rank == (95 * r.n + 99) // 100, r.duration))).label("p95"),
    ).group_by(r.grp)


def _ms(ns: Any) -> float:
    return int(ns or 0) / 1_000_000


async def usage(
    session: AsyncSession, *, app_id: str, start: datetime, end: datetime, bucket: Bucket
) -> MetricsReport:
    filters = TraceFilters(start_ns=to_ns(start), end_ns=to_ns(end))
    traces = rollup.filtered_traces(app_id, filters).subquery("traces")
    c = traces.c
    totals = (await session.execute(select(*_figures(c)).select_from(traces))).one()
    requests = int(totals.requests)

    overall = (await session.execute(_percentiles(c.duration_ns))).first()
    in_range = Span.trace_id.in_(select(c.trace_id))
    span_figures = (
        await session.execute(
            select(
                func.count(func.distinct(Span.model)).label("models"),
                func.coalesce(func.sum(case((Span.span_type == derive.LLM, 1), else_=0)), 0).label(
                    "llm_calls"
                ),
            ).where(Span.app_id == app_id, in_range)
        )
    ).one()

    size = BUCKET_NS[bucket]
    # Integer division of the start, in a subquery so GROUP BY names a plain column.
    bucketed = select(traces, (c.start_ns // size).label("bucket")).subquery("bucketed")
    b = bucketed.c
    rows = (
        await session.execute(
            select(
                b.bucket,
                *_figures(b),
            ).group_by(b.bucket)
        )
    ).all()
    points = {int(row.bucket): row for row in rows}
    spreads = {
        int(row.grp): row for row in await session.execute(_percentiles(b.duration_ns, b.bucket))
    }
    first, last = to_ns(start) // size, to_ns(end) // size
    series = [_point(n, size, points.get(n), spreads.get(n)) for n in range(first, last + 1)]

    input_tokens, output_tokens = int(totals.input_tokens), int(totals.output_tokens)
    cost = float(totals.cost)
    return MetricsReport(
        start_date=start,
        end_date=end,
        bucket=bucket,
        summary=MetricsSummary(
            total_requests=requests,
            success_count=requests - int(totals.errors),
            error_count=int(totals.errors),
            llm_calls=int(span_figures.llm_calls),
            total_cost=cost,
            total_tokens=input_tokens + output_tokens,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            avg_latency_ms=_ratio(int(totals.duration_ns) / 1_000_000, requests),
            p50_latency_ms=_ms(overall.p50) if overall else 0.0,
            p95_latency_ms=_ms(overall.p95) if overall else 0.0,
            unique_users=int(totals.users),
            model_count=int(span_figures.models),
            avg_cost_per_request=_ratio(cost, requests),
            avg_input_tokens_per_request=_ratio(input_tokens, requests),
            avg_output_tokens_per_request=_ratio(output_tokens, requests),
            avg_total_tokens_per_request=_ratio(input_tokens + output_tokens, requests),
        ),
        time_series=series,
        by_model=await _by_model(session, app_id, in_range),
    )


async def _by_model(
    session: AsyncSession, app_id: str, in_range: ColumnElement[bool]
) -> list[ModelMetrics]:
    """The calls of each model in the range's traces, most calls first."""
    calls = (
        select(
            Span.model.label("model"),
            (Span.end_time_ns - Span.start_time_ns).label("duration_ns"),
            Span.status_code.label("status_code"),
            func.coalesce(Span.cost, 0.0).label("cost"),
            Span.input_tokens.label("input_tokens"),
            Span.output_tokens.label("output_tokens"),
        )
        .where(Span.app_id == app_id, Span.model.is_not(None), in_range)
        .subquery("calls")
    )
    m = calls.c
    calls_count = func.count()
    rows = (
        await session.execute(
            select(
                m.model,
                calls_count.label("calls"),
                func.sum(case((m.status_code == _ERROR, 1), else_=0)).label("errors"),
                func.sum(m.cost).label("cost"),
                func.sum(m.input_tokens).label("input_tokens"),
                func.sum(m.output_tokens).label("output_tokens"),
            )
            .group_by(m.model)
            .order_by(calls_count.desc(), m.model)
            .limit(MAX_MODELS)
        )
    ).all()
    if not rows:
        return []
    spreads = {row.grp: row for row in await session.execute(_percentiles(m.duration_ns, m.model))}
    return [
        ModelMetrics(
            model=row.model,
            calls=int(row.calls),
            errors=int(row.errors or 0),
            cost=float(row.cost or 0.0),
            input_tokens=int(row.input_tokens or 0),
            output_tokens=int(row.output_tokens or 0),
            p50_latency_ms=_ms(spreads[row.model].p50),
            p95_latency_ms=_ms(spreads[row.model].p95),
        )
        for row in rows
    ]


def _point(index: int, size: int, row: Any | None, spread: Any | None) -> MetricsPoint:
    begins = moment(index * size)
    requests = int(row.requests) if row else 0
    errors = int(row.errors) if row else 0
    input_tokens = int(row.input_tokens) if row else 0
    output_tokens = int(row.output_tokens) if row else 0
    return MetricsPoint(
        start=begins,
        date=begins.date(),
        hour=begins.hour,
        requests=requests,
        successes=requests - errors,
        errors=errors,
        cost=float(row.cost) if row else 0.0,
        tokens=input_tokens + output_tokens,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        avg_latency_ms=_ratio(int(row.duration_ns) / 1_000_000, requests) if row else 0.0,
        p50_latency_ms=_ms(spread.p50) if spread else 0.0,
        p95_latency_ms=_ms(spread.p95) if spread else 0.0,
        unique_users=int(row.users) if row else 0,
    )
