"""Scores: per-name aggregates over the filtered scores, then the scores themselves,
newest first, each linking to the trace (or span) it is about (scores.service).

The filters are those of ``GET /v1/scores``: name, source, the trace or span id, and a
range of days. Every read names the app of the URL, so another app's scores never show.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request, Response
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from agentmark_gateway.deps import DbSession
from agentmark_gateway.errors import BadRequest
from agentmark_gateway.permissions.org_roles import Action
from agentmark_gateway.scores import service as scores
from agentmark_gateway.scores.models import Score
from agentmark_gateway.scores.schemas import ScoreAggregation
from agentmark_gateway.traces.models import Span, Trace
from agentmark_gateway.web.context import AppRef, CurrentApp, area_context
from agentmark_gateway.web.paging import PageNumber, has_more, offset
from agentmark_gateway.web.route import WebRoute
from agentmark_gateway.web.session import Viewer, allowed
from agentmark_gateway.web.templating import render

router = APIRouter(prefix="/apps/{app_id}/scores", route_class=WebRoute)

PAGE_SIZE = 50
# Labels listed per score name in the aggregates; the rest are counted as "others".
TOP_LABELS = 5

Text = Annotated[str, Query(max_length=255)]


def _day(text: str, what: str) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise BadRequest(f"{what} is a date (YYYY-MM-DD)", code="invalid_query_params") from None


@dataclass(frozen=True)
class ListQuery:
    """The list's query string, as the filter form and the page links write it."""

    name: str = ""
    source: str = ""
    resource: str = ""
    start: str = ""  # days, as <input type="date"> sends them
    end: str = ""

    def filters(self) -> scores.ScoreFilters:
        start, end = _day(self.start, "From"), _day(self.end, "To")
        if start and end and start > end:
            raise BadRequest("From is after To", code="invalid_query_params")
        return scores.ScoreFilters(
            name=self.name or None,
            source=self.source.strip() or None,
            resource_id=self.resource.strip() or None,
            start_date=start,
            end_date=end,
        )

    @property
    def active(self) -> bool:
        return any(vars(self).values())

    def url(self, base: str, **extra: Any) -> str:
        values = {k: v for k, v in {**vars(self), **extra}.items() if v}
        return f"{base}?{urlencode(values)}" if values else base


def _list_query(
    name: Text = "", source: Text = "", resource: Text = "", start: Text = "", end: Text = ""
) -> ListQuery:
    return ListQuery(name, source, resource, start, end)


@dataclass(frozen=True)
class Aggregate:
    """One name's figures; labels (categorical and boolean scores) by how often given."""

    name: str
    count: int
    mean: float
    low: float
    high: float
    labels: list[tuple[str, int]]
    other_labels: int


def _aggregate(found: ScoreAggregation) -> Aggregate:
    # The SDK's experiments send an empty label when the evaluator gave none.
    given = sorted(
        ((label, n) for label, n in found.labels.items() if label.strip()),
        key=lambda item: (-item[1], item[0]),
    )
    return Aggregate(
        name=found.name,
        count=found.count,
        mean=found.avg_score,
        low=found.min_score,
        high=found.max_score,
        labels=given[:TOP_LABELS],
        other_labels=sum(n for _label, n in given[TOP_LABELS:]),
    )


async def _links(db: AsyncSession, app: AppRef, found: list[Score]) -> dict[str, str]:
    """Each score's resource id, to the page of its trace (with ``?span=`` for a span).

    A resource the app has not received (a score may come before its trace) has no link.
    """
    ids = {score.resource_id.lower() for score in found}
    base = f"/apps/{app.id}/traces"
    known = await db.scalars(
        select(Trace.trace_id).where(Trace.app_id == app.id, Trace.trace_id.in_(ids))
    )
    links = {trace_id: f"{base}/{trace_id}" for trace_id in known}
    # Span ids are 16 hex digits; only ids that are no trace's are looked up as spans.
    rest = [i for i in ids if i not in links and len(i) == 16]
    if rest:
        spans = await db.execute(
            select(Span.span_id, Span.trace_id).where(Span.app_id == app.id, Span.span_id.in_(rest))
        )
        for span_id, trace_id in spans:
            links[span_id] = f"{base}/{trace_id}?{urlencode({'span': span_id})}"
    return {score.id: links.get(score.resource_id.lower(), "") for score in found}


ListParams = Annotated[ListQuery, Depends(_list_query)]


@router.get("")
async def list_page(
    request: Request,
    db: DbSession,
    app: CurrentApp,
    query: ListParams,
    page: PageNumber = 1,
    viewer: Viewer = allowed(Action.APPS_READ),
) -> Response:
    filters = query.filters()
    found, total = await scores.list_scores(
        db, app_id=app.id, filters=filters, limit=PAGE_SIZE, offset=offset(page, PAGE_SIZE)
    )
    aggregates = await scores.aggregate_scores(db, app_id=app.id, filters=filters)
    base = f"/apps/{app.id}/scores"
    context = await area_context(request, db, viewer, app, "scores")
    context.update(
        query=query,
        names=await scores.score_names(db, app_id=app.id),
        aggregates=[_aggregate(item) for item in aggregates],
        scores=found,
        links=await _links(db, app, found),
        total=total,
        page=page,
        newer_url=query.url(base, page=page - 1 if page > 2 else None) if page > 1 else None,
        older_url=query.url(base, page=page + 1) if has_more(page, PAGE_SIZE, total) else None,
        name_url=lambda name: query.url(base, name=name),
    )
    return render(request, "scores/index.html", context)
