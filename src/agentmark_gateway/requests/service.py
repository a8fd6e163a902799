"""Model calls ("generation" spans) as request records, always within one app.

A generation span is one the gateway types ``llm`` at ingest (``GET /v1/spans``
calls them GENERATION), so both routes count the same calls. The user is the
span's own, else its trace's (the SDK sets it on the root span). A request either
failed or did not: ``ERROR`` for a span with error status, ``OK`` otherwise
(unset included), as the reference API's two statuses say.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, and_, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from agentmark_gateway.pagination import Page, bounded_count
from agentmark_gateway.traces import derive
from agentmark_gateway.traces.filters import STATUS_CODES, Sort, Status
from agentmark_gateway.traces.models import Span, Trace
from agentmark_gateway.traces.times import moment

# sort_by values and the column each sorts on.
SORTS: dict[str, Any] = {
    "ts": Span.start_time_ns,
    "cost": Span.cost,
    "latency_ms": Span.duration_ms,
    "prompt_tokens": Span.input_tokens,
    "completion_tokens": Span.output_tokens,
    "model_used": Span.model,
}
DEFAULT_SORT = Sort("ts", descending=True)
_ERROR = STATUS_CODES[Status.ERROR]
# The row input the SDK records for a prompt run (template variables, JSON text).
PROPS_KEY = "agentmark.props"


@dataclass(frozen=True)
class RequestFilters:
    start_ns: int | None = None
    end_ns: int | None = None
    status: Status | None = None
    user_id: str | None = None
    model: str | None = None
    sort: Sort = DEFAULT_SORT


def _conditions(app_id: str, filters: RequestFilters) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = [Span.app_id == app_id, Span.span_type == derive.LLM]
    if filters.start_ns is not None:
        conditions.append(Span.start_time_ns >= filters.start_ns)
    if filters.end_ns is not None:
        conditions.append(Span.start_time_ns <= filters.end_ns)
    if filters.status is Status.ERROR:
        conditions.append(Span.status_code == _ERROR)
    elif filters.status is not None:
        conditions.append(Span.status_code != _ERROR)
    if filters.model is not None:
        conditions.append(Span.model == filters.model)
    if filters.user_id is not None:
        conditions.append(func.coalesce(Span.user_id, Trace.user_id) == filters.user_id)
    return conditions


async def list_requests(
    session: AsyncSession, *, app_id: str, filters: RequestFilters, page: Page
) -> tuple[list[dict[str, Any]], int]:
    conditions = _conditions(app_id, filters)
    # The trace row (same app, same id) carries the user the root span named.
    joined = and_(Trace.app_id == Span.app_id, Trace.trace_id == Span.trace_id)
    matching = select(Span.id).outerjoin(Trace, joined).where(*conditions)
    total = int(await session.scalar(bounded_count(matching, page.offset)) or 0)
    column = SORTS[filters.sort.key]
    order = column.desc() if filters.sort.descending else column.asc()
    result = await session.execute(
        select(Span, Trace.user_id)
        .outerjoin(Trace, joined)
        .where(*conditions)
        .order_by(order, Span.trace_id, Span.span_id)
        .limit(page.limit)
        .offset(page.offset)
    )
    return [_record(span, trace_user) for span, trace_user in result], total


def _record(span: Span, trace_user: str | None) -> dict[str, Any]:
    attributes = span.attributes or {}
    props = attributes.get(PROPS_KEY)
    return {
        "id": span.span_id,
        # One deployment is one organization: the app is the tenant.
        "tenant_id": span.app_id,
        "app_id": span.app_id,
        "cost": span.cost or 0.0,
        "prompt_tokens": span.input_tokens,
        "completion_tokens": span.output_tokens,
        "latency_ms": span.duration_ms,
        "model_used": span.model or "",
        "status": Status.ERROR.value if span.status_code == _ERROR else Status.OK.value,
        "input": span.input or "",
        "output": span.output,
        "ts": moment(span.start_time_ns).isoformat().replace("+00:00", "Z"),
        "user_id": span.user_id or trace_user or "",
        "prompt_name": span.prompt_name or "",
        "trace_id": span.trace_id,
        "status_message": span.status_message or "",
        "props": derive.text_of(props) if props is not None else "{}",
    }
