"""Traces: the list (filters, keyset pages, refreshing while open) and a trace's page
(its spans as a waterfall, one span's details, its scores), through traces.service.

A waterfall link is a plain link to the trace page with ``?span=``; htmx (boosted)
asks for the same address and the page answers with the span's panel alone.

Every read names the app of the URL, so another app's trace is simply not found.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from sqlalchemy import select

from agentmark_gateway.api_keys import service as keys
from agentmark_gateway.api_keys.models import ApiKey
from agentmark_gateway.db.base import utcnow
from agentmark_gateway.deps import DbSession
from agentmark_gateway.errors import BadRequest
from agentmark_gateway.permissions.org_roles import Action
from agentmark_gateway.scores import service as scores
from agentmark_gateway.traces import service as traces
from agentmark_gateway.traces.filters import TraceFilters
from agentmark_gateway.traces.models import Trace
from agentmark_gateway.traces.params import parse_status
from agentmark_gateway.traces.service import TraceCursor, TraceOutline
from agentmark_gateway.traces.times import to_ns
from agentmark_gateway.web import dataset_pages
from agentmark_gateway.web.context import AppRef, CurrentApp, area_context
from agentmark_gateway.web.route import WebRoute
from agentmark_gateway.web.session import Viewer, allowed
from agentmark_gateway.web.templating import is_htmx, render

router = APIRouter(prefix="/apps/{app_id}/traces", route_class=WebRoute)

PAGE_SIZE = 50
# The element a waterfall link swaps (the span's details beside it).
SPAN_PANEL = "span-detail"
# Waterfall rows in the page as it opens; the rest load as the list scrolls.
WATERFALL_CHUNK = 500
# How often an open list asks for what arrived; the answer is 204 when nothing did.
REFRESH_SECONDS = 5
RANGES = (
    ("", "Any time"),
    ("1h", "Last hour"),
    ("24h", "Last 24 hours"),
    ("7d", "Last 7 days"),
    ("30d", "Last 30 days"),
)
_RANGE_LENGTHS = {
    "1h": timedelta(hours=1),
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
}
SCORED = (("", "Any"), ("yes", "Scored"), ("no", "Not scored"))
# The key filter lists the app's live keys, at most this many (by name).
KEY_CHOICES = 500

Text = Annotated[str, Query(max_length=255)]
TraceId = Annotated[str, Path(max_length=64)]


@dataclass(frozen=True)
class ListQuery:
    """The list's query string, as the form and the page links write it."""

    range: str = ""
    name: str = ""
    status: str = ""
    user: str = ""
    session: str = ""
    scored: str = ""
    run: str = ""
    key: str = ""

    def filters(self) -> TraceFilters:
        if self.range and self.range not in _RANGE_LENGTHS:
            raise BadRequest("Choose a time range from the list", code="invalid_query_params")
        if self.scored not in ("", "yes", "no"):
            raise BadRequest("Scored is yes, no or empty", code="invalid_query_params")
        since = utcnow() - _RANGE_LENGTHS[self.range] if self.range else None
        return TraceFilters(
            start_ns=None if since is None else to_ns(since),
            status=parse_status(self.status),
            name=self.name.strip() or None,
            user_id=self.user.strip() or None,
            session_id=self.session.strip() or None,
            dataset_run_id=self.run.strip() or None,
            api_key_id=self.key.strip() or None,
            has_score=None if not self.scored else self.scored == "yes",
        )

    @property
    def active(self) -> bool:
        return any(vars(self).values())

    def url(self, base: str, **extra: str) -> str:
        values = {k: v for k, v in {**vars(self), **extra}.items() if v}
        return f"{base}?{urlencode(values)}" if values else base


def _list_query(
    range: Text = "",
    name: Text = "",
    status: Text = "",
    user: Text = "",
    session: Text = "",
    scored: Text = "",
    run: Text = "",
    key: Text = "",
) -> ListQuery:
    return ListQuery(range, name, status, user, session, scored, run, key)


def _cursor(text: str) -> TraceCursor | None:
    """``before=<start ns>-<trace id>``: where the previous page ended."""
    if not text:
        return None
    ns, _, trace_id = text.partition("-")
    if not (ns.isascii() and ns.isdigit() and len(ns) <= 19 and trace_id):
        raise BadRequest("That page link is broken: start from the newest", code="invalid_cursor")
    return TraceCursor(int(ns), trace_id)


def _signature(found: list[Any]) -> str:
    """Changes when a trace arrives or grows: the open list then swaps in the new rows."""
    digest = hashlib.sha256()
    for trace in found:
        digest.update(f"{trace.id}:{trace.span_count}:{trace.status}:{trace.end}".encode())
    return digest.hexdigest()[:16]


async def _has_traces(db: DbSession, app: AppRef) -> bool:
    found = await db.scalar(select(Trace.trace_id).where(Trace.app_id == app.id).limit(1))
    return found is not None


async def _key_names(db: DbSession, app: AppRef, key_ids: set[str]) -> dict[str, str]:
    """The names of the app's live keys among ``key_ids``; a deleted key has none."""
    if not key_ids:
        return {}
    found = await db.scalars(
        select(ApiKey).where(
            ApiKey.app_id == app.id, ApiKey.id.in_(key_ids), ApiKey.deleted_at.is_(None)
        )
    )
    return {key.id: keys.base_name(key) for key in found}


async def _key_choices(db: DbSession, app: AppRef) -> list[tuple[str, str]]:
    """(id, name) of the app's live keys, for the key filter."""
    found, _total = await keys.list_keys(db, app_id=app.id, limit=KEY_CHOICES, sort="name")
    return [(key.id, keys.base_name(key)) for key in found]


async def _list_values(
    request: Request, db: DbSession, app: AppRef, query: ListQuery, before: str
) -> dict[str, Any]:
    cursor = _cursor(before)
    found, after = await traces.list_traces_before(
        db, app_id=app.id, filters=query.filters(), before=cursor, limit=PAGE_SIZE
    )
    base = f"/apps/{app.id}/traces"
    onboarding = not found and cursor is None and not query.active
    if onboarding and await _has_traces(db, app):
        onboarding = False
    return {
        "app": app,
        "traces": found,
        "key_names": await _key_names(db, app, {t.api_key_id for t in found if t.api_key_id}),
        "keys_url": f"/apps/{app.id}/settings/api-keys",
        "query": query,
        "first_page": cursor is None,
        "newest_url": query.url(base),
        "older_url": query.url(base, before=f"{after.start_ns}-{after.trace_id}")
        if after
        else None,
        "rows_url": query.url(base + "/rows"),
        "signature": _signature(found),
        "refresh_seconds": REFRESH_SECONDS,
        "onboarding": onboarding,
        "base_url": str(request.base_url).rstrip("/"),
    }


ListParams = Annotated[ListQuery, Depends(_list_query)]


@router.get("")
async def list_page(
    request: Request,
    db: DbSession,
    app: CurrentApp,
    query: ListParams,
    before: Text = "",
    viewer: Viewer = allowed(Action.APPS_READ),
) -> Response:
    context = await area_context(request, db, viewer, app, "traces")
    context.update(await _list_values(request, db, app, query, before))
    context.update(ranges=RANGES, scored_choices=SCORED, key_choices=await _key_choices(db, app))
    return render(request, "traces/index.html", context)


@router.get("/rows")
async def list_rows(
    request: Request,
    db: DbSession,
    app: CurrentApp,
    query: ListParams,
    seen: Annotated[str, Query(max_length=64)] = "",
    viewer: Viewer = allowed(Action.APPS_READ),
) -> Response:
    """The first page again, for the open list: 204 (nothing to swap) when unchanged."""
    values = await _list_values(request, db, app, query, "")
    if seen and seen == values["signature"]:
        return Response(status_code=204)
    return render(request, "traces/_list.html", {"viewer": viewer, **values})


def _selected(outline: TraceOutline, span_id: str) -> str | None:
    if any(item.id == span_id for item in outline.spans):
        return span_id
    return outline.spans[0].id if outline.spans else None


async def _span_values(db: DbSession, app: AppRef, trace_id: str, span_id: str) -> dict[str, Any]:
    span = await traces.get_span(db, app_id=app.id, trace_id=trace_id, span_id=span_id)
    found, _total = await scores.list_scores(
        db, app_id=app.id, filters=scores.ScoreFilters(resource_id=span_id), limit=100, offset=0
    )
    return {"span": span, "span_scores": found}


@dataclass(frozen=True)
class Row:
    """One waterfall row, worked out here so the template only writes it out."""

    id: str
    name: str
    kind: str
    failed: bool
    bar_class: str
    indent: int  # depth, capped at what the style sheet indents
    left: int  # where the bar starts and how long it is, in thousandths of the trace
    width: int
    duration_ms: float


MAX_INDENT = 12


def _rows(outline: TraceOutline) -> list[Row]:
    if not outline.spans:
        return []
    start = min(item.start_ns for item in outline.spans)
    total = max(max(item.end_ns for item in outline.spans) - start, 1)
    rows = []
    for item in outline.spans:
        left = min(round((item.start_ns - start) * 1000 / total), 998)
        width = min(max(round((item.end_ns - item.start_ns) * 1000 / total), 2), 1000 - left)
        failed = item.status == "ERROR"
        rows.append(
            Row(
                id=item.id,
                name=item.name,
                kind=item.kind,
                failed=failed,
                bar_class="error" if failed else item.type.lower(),
                indent=min(item.depth, MAX_INDENT),
                left=left,
                width=width,
                duration_ms=item.duration_ms,
            )
        )
    return rows


def _chunk(rows: list[Row], first: int, selected: str | None, base: str) -> dict[str, Any]:
    """Rows ``first`` to ``first + WATERFALL_CHUNK`` and where the next ones load from."""
    end = first + WATERFALL_CHUNK
    more = end < len(rows)
    query = urlencode({"from": end, "span": selected or ""})
    return {
        "rows": rows[first:end],
        "selected": selected,
        "more_url": f"{base}/waterfall?{query}" if more else None,
        "all_url": f"{base}?{urlencode({'span': selected or '', 'all': 1})}" if more else None,
        "span_total": len(rows),
    }


Selected = Annotated[str, Query(alias="span", max_length=64)]


@router.get("/{trace_id}")
async def trace_page(
    request: Request,
    db: DbSession,
    app: CurrentApp,
    trace_id: TraceId,
    span: Selected = "",
    show_all: Annotated[bool, Query(alias="all")] = False,
    viewer: Viewer = allowed(Action.APPS_READ),
) -> Response:
    outline = await traces.get_trace_outline(db, app_id=app.id, trace_id=trace_id.lower())
    trace = outline.trace
    selected = _selected(outline, span.lower())
    if is_htmx(request) and request.headers.get("hx-target") == SPAN_PANEL and selected:
        # A waterfall link (boosted): only the panel changes.
        values = await _span_values(db, app, trace.id, selected)
        return render(
            request,
            "traces/_span.html",
            {"app": app, "viewer": viewer, "trace_id": trace.id, **values},
        )
    trace_scores, _total = await scores.list_scores(
        db, app_id=app.id, filters=scores.ScoreFilters(resource_id=trace.id), limit=100, offset=0
    )
    context = await area_context(
        request, db, viewer, app, "traces", [(trace.name or trace.id, None)]
    )
    rows = _rows(outline)
    base = f"/apps/{app.id}/traces/{trace.id}"
    chunk = _chunk(rows, 0, selected, base)
    if show_all:  # without script, the link under the first rows shows them all
        chunk.update(rows=rows, more_url=None, all_url=None)
    context.update(trace=trace, trace_scores=trace_scores, **chunk)
    sent_by = {trace.api_key_id} if trace.api_key_id else set()
    context.update(key_names=await _key_names(db, app, sent_by))
    context.update(dataset_names=await dataset_pages.dataset_choices(db, app, viewer))
    if selected is not None:
        context.update(await _span_values(db, app, trace.id, selected))
    return render(request, "traces/trace.html", context)


@router.get("/{trace_id}/waterfall")
async def waterfall_rows(
    request: Request,
    db: DbSession,
    app: CurrentApp,
    trace_id: TraceId,
    first: Annotated[int, Query(alias="from", ge=0, le=10_000_000)] = 0,
    span: Selected = "",
    viewer: Viewer = allowed(Action.APPS_READ),
) -> Response:
    """The next rows of a long trace's waterfall, asked for as the list scrolls to its end."""
    outline = await traces.get_trace_outline(db, app_id=app.id, trace_id=trace_id.lower())
    base = f"/apps/{app.id}/traces/{outline.trace.id}"
    chunk = _chunk(_rows(outline), first, span.lower() or None, base)
    return render(request, "traces/_waterfall_rows.html", chunk)
