"""Datasets: the list, a dataset's rows a page at a time, and adding a row from a trace
or one of its spans (the trace page's "Add to dataset" forms), through datasets.service
with the same row mapping as ``POST /v1/datasets/{name}/rows/from-traces|from-spans``.

Every read and write names the app of the URL, so another app's dataset or trace is
simply not found.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Form, Path, Query, Request, Response
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from agentmark_gateway.datasets import service as datasets
from agentmark_gateway.deps import DbSession, GatewayDep
from agentmark_gateway.errors import ApiError, BadRequest, NotFound
from agentmark_gateway.permissions.org_roles import Action
from agentmark_gateway.templates.paths import MAX_DATASET_NAME_LENGTH, check_dataset_name
from agentmark_gateway.traces import service as traces
from agentmark_gateway.traces.models import Trace
from agentmark_gateway.web.context import AppRef, CurrentApp, area_context
from agentmark_gateway.web.paging import PageNumber, has_more, offset
from agentmark_gateway.web.route import WebRoute, redirect
from agentmark_gateway.web.session import Viewer, allowed
from agentmark_gateway.web.templating import is_htmx, render

router = APIRouter(prefix="/apps/{app_id}/datasets", route_class=WebRoute)
# The form on a trace's page posts under the trace's own address.
trace_router = APIRouter(prefix="/apps/{app_id}/traces", route_class=WebRoute)

PAGE_SIZE = 50
# Names offered by the form's list; a longer list is no help, and any name can be typed.
MAX_CHOICES = 200
# A value longer than this shows its start, and the rest on request (<details>).
SHORT_VALUE = 160

DatasetName = Annotated[str, Path(max_length=MAX_DATASET_NAME_LENGTH)]
TraceId = Annotated[str, Path(max_length=64)]


def dataset_url(app_id: str, name: str) -> str:
    return f"/apps/{app_id}/datasets/{quote(name)}"


@router.get("")
async def list_page(
    request: Request,
    db: DbSession,
    app: CurrentApp,
    page: PageNumber = 1,
    viewer: Viewer = allowed(Action.APPS_READ),
) -> Response:
    found, total = await datasets.list_datasets(
        db, app_id=app.id, limit=PAGE_SIZE, offset=offset(page, PAGE_SIZE)
    )
    context = await area_context(request, db, viewer, app, "datasets")
    context.update(
        datasets=[(summary, dataset_url(app.id, summary.name)) for summary in found],
        total=total,
        page=page,
        has_more=has_more(page, PAGE_SIZE, total),
    )
    return render(request, "datasets/index.html", context)


@dataclass(frozen=True)
class Cell:
    """A row's value as text: whole when short, else its start and the whole on request."""

    text: str
    start: str | None = None  # set when the text is long

    @classmethod
    def of(cls, value: Any) -> Cell:
        if value is None:
            return cls("")
        text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, indent=2)
        if len(text) <= SHORT_VALUE and "\n" not in text:
            return cls(text)
        if len(text) <= SHORT_VALUE:  # short, but pretty-printed on several lines
            return cls(json.dumps(value, ensure_ascii=False))
        return cls(text, start=" ".join(text[:SHORT_VALUE].split()) + "…")


@dataclass(frozen=True)
class RowView:
    line: int
    input: Cell
    expected_output: Cell
    metadata: Cell


def _row_view(line: int, data: dict[str, Any]) -> RowView:
    return RowView(
        line=line,
        input=Cell.of(data.get("input")),
        expected_output=Cell.of(data.get("expected_output")),
        metadata=Cell.of(data.get("metadata") or None),
    )


@router.get("/{name:path}")
async def dataset_page(
    request: Request,
    db: DbSession,
    app: CurrentApp,
    name: DatasetName,
    page: PageNumber = 1,
    added: Annotated[int, Query(ge=0)] = 0,
    viewer: Viewer = allowed(Action.APPS_READ),
) -> Response:
    try:
        check_dataset_name(name)
    except ValueError:  # no dataset has such a name; nor does one being written or deleted
        raise datasets.not_found(name) from None
    rows, total = await datasets.list_rows(
        db, app_id=app.id, name=name, limit=PAGE_SIZE, offset=offset(page, PAGE_SIZE)
    )
    context = await area_context(request, db, viewer, app, "datasets", [(name, None)])
    context.update(
        name=name,
        rows=[_row_view(row.line_number, row.data) for row in rows],
        total=total,
        page=page,
        first=offset(page, PAGE_SIZE),
        has_more=has_more(page, PAGE_SIZE, total),
        added=added,
    )
    return render(request, "datasets/dataset.html", context)


async def dataset_choices(db: AsyncSession, app: AppRef, viewer: Viewer) -> list[str]:
    """The names the trace page's forms offer; none when the viewer cannot add rows."""
    if not viewer.can(Action.DATASETS_WRITE):
        return []
    found, _total = await datasets.list_datasets(db, app_id=app.id, limit=MAX_CHOICES, offset=0)
    return [summary.name for summary in found]


async def _check_trace(db: AsyncSession, app: AppRef, trace_id: str) -> None:
    found = await db.scalar(
        select(Trace.trace_id).where(Trace.app_id == app.id, Trace.trace_id == trace_id)
    )
    if found is None:
        raise NotFound(f"Trace '{trace_id}' not found", code="trace_not_found")


def _valid_name(text: str) -> str:
    try:
        return check_dataset_name(text.strip())
    except ValueError as error:
        reason = str(error)
        raise BadRequest(f"{reason[:1].upper()}{reason[1:]}.") from None


@trace_router.post("/{trace_id}/dataset-rows")
async def add_row(
    request: Request,
    db: DbSession,
    gateway: GatewayDep,
    app: CurrentApp,
    trace_id: TraceId,
    dataset: Annotated[str, Form(max_length=MAX_DATASET_NAME_LENGTH + 64)],
    span: Annotated[str, Form(max_length=64)] = "",
    viewer: Viewer = allowed(Action.DATASETS_WRITE),
) -> Response:
    """One row from the trace (its root span) or from one of its spans, as the API's
    imports make it. The answer shows beside the form that sent it (htmx), or is the
    dataset's page."""
    try:
        name, line = await _add(
            db,
            app,
            trace_id.lower(),
            span.strip().lower(),
            dataset,
            max_rows=gateway.settings.max_dataset_rows,
        )
    except ApiError as error:
        if not is_htmx(request):
            raise
        # Beside the form, not at the top of a long page.
        context = {"status": error.status_code, "message": error.message}
        return render(request, "_flash.html", context, status_code=error.status_code)
    page = f"{dataset_url(app.id, name)}?page={(line - 1) // PAGE_SIZE + 1}"
    if not is_htmx(request):
        return redirect(request, f"{page}&added={line}#line-{line}")
    context = {"url": f"{page}#line-{line}", "name": name, "line": line, "from_span": bool(span)}
    return render(request, "datasets/_added.html", context)


async def _add(
    db: AsyncSession,
    app: AppRef,
    trace_id: str,
    span_id: str,
    dataset: str,
    *,
    max_rows: int | None,
) -> tuple[str, int]:
    """The dataset's name and the new row's line number."""
    await _check_trace(db, app, trace_id)
    name = _valid_name(dataset)
    if span_id:
        # The span must be of this trace: the import itself looks span ids up app-wide.
        await traces.get_span(db, app_id=app.id, trace_id=trace_id, span_id=span_id)
        [result] = await datasets.import_from_spans(
            db, app_id=app.id, name=name, span_ids=[span_id], mapping=None, max_rows=max_rows
        )
    else:
        [result] = await datasets.import_from_traces(
            db, app_id=app.id, name=name, trace_ids=[trace_id], mapping=None, max_rows=max_rows
        )
    if result.line_number is None:
        raise BadRequest(f"Nothing was added to {name}: {result.error}.")
    return name, result.line_number
