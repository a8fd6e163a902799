"""Usage, cost, token and latency figures of an app, computed from its spans.

A request is a trace: it succeeded unless one of its spans failed, its latency
is its duration and it falls in the range (and in a bucket) by its start. Costs
were fixed per span at ingest (see pricing.py).
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from agentmark_gateway.metrics.schemas import Bucket, MetricsPoint, MetricsReport, MetricsSummary
from agentmark_gateway.traces import derive, rollup
from agentmark_gateway.traces.filters import STATUS_CODES, Status, TraceFilters
from agentmark_gateway.traces.models import Span
from agentmark_gateway.traces.times import moment, to_ns

BUCKET_NS: dict[str, int] = {"hour": 3_600 * 10**9, "day": 86_400 * 10**9}
MAX_BUCKETS = 10_000
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


async def usage(
    session: AsyncSession, *, app_id: str, start: datetime, end: datetime, bucket: Bucket
) -> MetricsReport:
    filters = TraceFilters(start_ns=to_ns(start), end_ns=to_ns(end))
    traces = rollup.filtered_traces(app_id, filters).subquery("traces")
    c = traces.c
    totals = (await session.execute(select(*_figures(c)).select_from(traces))).one()
    requests = int(totals.requests)

    p95_ns = 0
    if requests:
        # Nearest rank: the smallest duration with at least 95% of traces at or below it.
        rank = math.ceil(0.95 * requests) - 1
        p95_ns = int(
            await session.scalar(
                select(c.duration_ns).order_by(c.duration_ns).limit(1).offset(rank)
            )
            or 0
        )
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
    first, last = to_ns(start) // size, to_ns(end) // size
    series = [_point(n, size, points.get(n)) for n in range(first, last + 1)]

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
            p95_latency_ms=p95_ns / 1_000_000,
            unique_users=int(totals.users),
            model_count=int(span_figures.models),
            avg_cost_per_request=_ratio(cost, requests),
            avg_input_tokens_per_request=_ratio(input_tokens, requests),
            avg_output_tokens_per_request=_ratio(output_tokens, requests),
            avg_total_tokens_per_request=_ratio(input_tokens + output_tokens, requests),
        ),
        time_series=series,
    )


def _point(index: int, size: int, row: Any | None) -> MetricsPoint:
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
        unique_users=int(row.users) if row else 0,
    )
