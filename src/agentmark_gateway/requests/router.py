"""``GET /v1/requests``: the reference API's list of model calls."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query

from agentmark_gateway.api_keys.verify import VerifiedKey
from agentmark_gateway.api_route import ApiRoute
from agentmark_gateway.deps import DbSession
from agentmark_gateway.pagination import PageDep, paginated
from agentmark_gateway.permissions.enforce import requires
from agentmark_gateway.requests import service
from agentmark_gateway.traces.filters import Sort, Status
from agentmark_gateway.traces.params import date_range, invalid, ns_or_none

router = APIRouter(tags=["Requests"], route_class=ApiRoute)

Text = Annotated[str | None, Query(max_length=255)]
Moment = Annotated[str | None, Query(description="ISO date or date-time (UTC when no zone).")]


@router.get(
    "/v1/requests",
    summary="List requests (model calls)",
    description="One record per model call: the spans typed as generations, newest first. "
    "`input`, `output` and `props` are text (JSON where the SDK recorded JSON); `tenant_id` "
    "is the app.",
)
async def list_requests(
    *,
    key: VerifiedKey = requires("trace.read"),
    db: DbSession,
    page: PageDep,
    start_date: Moment = None,
    end_date: Moment = None,
    status: Annotated[
        Literal["OK", "ERROR"] | None, Query(description="ERROR: failed calls; OK: the others.")
    ] = None,
    user_id: Text = None,
    model: Text = None,
    sort_by: Annotated[
        str | None, Query(description=f"One of {', '.join(service.SORTS)} (default ts).")
    ] = None,
    sort_order: Annotated[Literal["asc", "desc"], Query()] = "desc",
) -> dict[str, Any]:
    start, end = date_range(start_date, end_date)
    key_name = (sort_by or service.DEFAULT_SORT.key).strip()
    if key_name not in service.SORTS:
        raise invalid(
            f"Invalid query parameters: sort_by: unknown key '{key_name}' "
            f"(one of {', '.join(service.SORTS)})"
        )
    filters = service.RequestFilters(
        start_ns=ns_or_none(start),
        end_ns=ns_or_none(end),
        status=None if status is None else Status(status),
        user_id=user_id,
        model=model,
        sort=Sort(key_name, sort_order == "desc"),
    )
    records, total = await service.list_requests(db, app_id=key.app_id, filters=filters, page=page)
    return paginated(records, total, page)
