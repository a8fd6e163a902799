"""Metrics: an app's requests, errors, cost, tokens and latency over time, and by model,
through the same service as ``GET /v1/metrics`` (metrics.service.usage).

Each chart is drawn by charts.js from numbers the page carries, and says the same
in a sentence and in a table (in <details>) for those who cannot see it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response

from agentmark_gateway.db.base import utcnow
from agentmark_gateway.deps import DbSession
from agentmark_gateway.metrics import service as metrics
from agentmark_gateway.metrics.schemas import Bucket, MetricsPoint, MetricsReport
from agentmark_gateway.permissions.org_roles import Action
from agentmark_gateway.web.context import CurrentApp, area_context
from agentmark_gateway.web.figures import cost, count, duration
from agentmark_gateway.web.route import WebRoute
from agentmark_gateway.web.session import Viewer, allowed
from agentmark_gateway.web.templating import render

router = APIRouter(prefix="/apps/{app_id}/metrics", route_class=WebRoute)

CHART_HEIGHT = 220


@dataclass(frozen=True)
class Range:
    """One choice of the range picker."""

    id: str
    label: str
    length: timedelta
    bucket: Bucket


RANGES = (
    Range("24h", "24 hours", timedelta(hours=24), "hour"),
    Range("7d", "7 days", timedelta(days=7), "hour"),
    Range("30d", "30 days", timedelta(days=30), "day"),
)
DEFAULT_RANGE = RANGES[1]


def _range(value: str) -> Range:
    # An unknown value (an old link) shows the default rather than an error page.
    return next((r for r in RANGES if r.id == value), DEFAULT_RANGE)


def error_rate(errors: int, requests: int) -> float:
    """Percent of requests that failed; 0 without requests."""
    return 100 * errors / requests if requests else 0.0


def _percent(value: float) -> str:
    return f"{value:.1f}%"


@dataclass(frozen=True)
class Column:
    """One series of a chart and its column in the chart's table."""

    label: str
    value: Any  # MetricsPoint -> number
    text: Any  # number -> cell text


@dataclass(frozen=True)
class Chart:
    """A chart, the sentence that says it, and the rows of its table (busy buckets)."""

    id: str
    title: str
    summary: str
    format: str
    columns: tuple[Column, ...]
    data: dict[str, Any]
    rows: list[tuple[MetricsPoint, list[str]]]


def _chart(
    id: str,
    title: str,
    summary: str,
    format: str,
    columns: tuple[Column, ...],
    series: list[MetricsPoint],
) -> Chart:
    data = {
        "format": format,
        "height": CHART_HEIGHT,
        "x": [int(point.start.timestamp()) for point in series],
        "series": [
            {"label": column.label, "values": [column.value(point) for point in series]}
            for column in columns
        ],
    }
    rows = [
        (point, [column.text(column.value(point)) for column in columns])
        for point in series
        if point.requests
    ]
    return Chart(id, title, summary, format, columns, data, rows)


def _charts(report: MetricsReport, chosen: Range) -> list[Chart]:
    series, total = report.time_series, report.summary
    span = f"in the last {chosen.label}"
    if not total.total_requests:
        quiet = f"No requests {span}."
        summaries = dict.fromkeys(("requests", "errors", "cost", "tokens", "latency"), quiet)
    else:
        summaries = {
            "requests": f"{total.total_requests:,} requests {span}, "
            f"{total.error_count:,} of them failed.",
            "errors": f"{_percent(error_rate(total.error_count, total.total_requests))} "
            f"of requests failed {span}; the worst {chosen.bucket}: "
            f"{_percent(max(error_rate(p.errors, p.requests) for p in series))}.",
            "cost": f"{cost(total.total_cost)} {span}, "
            f"{cost(total.avg_cost_per_request)} a request on average.",
            "tokens": f"{total.total_tokens:,} tokens {span}: {total.input_tokens:,} in, "
            f"{total.output_tokens:,} out.",
            "latency": f"Half the requests {span} took {duration(total.p50_latency_ms)} "
            f"or less, 95% took {duration(total.p95_latency_ms)} or less.",
        }
    whole = count
    return [
        _chart(
            "requests",
            "Requests",
            summaries["requests"],
            "count",
            (
                Column("Requests", lambda p: p.requests, whole),
                Column("Errors", lambda p: p.errors, whole),
            ),
            series,
        ),
        _chart(
            "errors",
            "Error rate",
            summaries["errors"],
            "percent",
            (
                Column(
                    "Error rate",
                    lambda p: round(error_rate(p.errors, p.requests), 2),
                    _percent,
                ),
            ),
            series,
        ),
        _chart(
            "cost",
            "Cost (USD)",
            summaries["cost"],
            "usd",
            (Column("Cost", lambda p: p.cost, cost),),
            series,
        ),
        _chart(
            "tokens",
            "Tokens",
            summaries["tokens"],
            "count",
            (
                Column("Input", lambda p: p.input_tokens, whole),
                Column("Output", lambda p: p.output_tokens, whole),
            ),
            series,
        ),
        _chart(
            "latency",
            "Latency",
            summaries["latency"],
            "ms",
            (
                Column("p50", lambda p: p.p50_latency_ms, duration),
                Column("p95", lambda p: p.p95_latency_ms, duration),
            ),
            series,
        ),
    ]


@router.get("")
async def metrics_page(
    request: Request,
    db: DbSession,
    app: CurrentApp,
    range_id: Annotated[str, Query(alias="range", max_length=16)] = "",
    viewer: Viewer = allowed(Action.APPS_READ),
) -> Response:
    chosen = _range(range_id)
    end = utcnow()
    report = await metrics.usage(
        db, app_id=app.id, start=end - chosen.length, end=end, bucket=chosen.bucket
    )
    context = await area_context(request, db, viewer, app, "metrics")
    context.update(
        ranges=RANGES,
        range=chosen,
        summary=report.summary,
        error_rate=error_rate(report.summary.error_count, report.summary.total_requests),
        charts=_charts(report, chosen),
        by_model=report.by_model,
        model_error_rate=error_rate,
    )
    return render(request, "metrics/index.html", context)
