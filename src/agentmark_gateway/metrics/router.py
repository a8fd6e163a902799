"""``GET /v1/metrics``: usage, cost, token and latency figures of the key's app."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query

from agentmark_gateway.api_keys.verify import VerifiedKey
from agentmark_gateway.api_route import ApiRoute
from agentmark_gateway.deps import DbSession
from agentmark_gateway.metrics import service
from agentmark_gateway.metrics.schemas import Bucket, MetricsResponse
from agentmark_gateway.permissions.enforce import requires
from agentmark_gateway.traces.params import date_range, invalid

router = APIRouter(route_class=ApiRoute)

DEFAULT_RANGE = timedelta(days=7)
EARLIEST = datetime.min.replace(tzinfo=UTC)


@router.get(
    "/v1/metrics",
    summary="Usage, cost, token and latency metrics",
    description="A summary and a time series over the traces that started in the range "
    "(default: the last 7 days). A request is one trace; costs are USD.",
    response_model=MetricsResponse,
)
async def get_metrics(
    *,
    key: VerifiedKey = requires("metrics.read"),
    db: DbSession,
    start_date: Annotated[
        str | None, Query(description="ISO date or date-time; default: 7 days before end_date.")
    ] = None,
    end_date: Annotated[
        str | None, Query(description="ISO date or date-time, inclusive; default: now.")
    ] = None,
    bucket: Annotated[Bucket, Query(description="Width of a time-series point.")] = "hour",
) -> dict[str, Any]:
    start, end = date_range(start_date, end_date)
    end = end or datetime.now(UTC)
    # Counted up from the calendar's first instant: end - 7 days would overflow in its first week.
    start = start or EARLIEST + max(end - EARLIEST - DEFAULT_RANGE, timedelta(0))
    if start > end:
        raise invalid("Invalid query parameters: start_date is after end_date")
    if service.bucket_count(start, end, bucket) > service.MAX_BUCKETS:
        raise invalid(
            f"Invalid query parameters: the range holds more than {service.MAX_BUCKETS} "
            f"{bucket} buckets; use a shorter range or bucket=day"
        )
    report = await service.usage(db, app_id=key.app_id, start=start, end=end, bucket=bucket)
    return {"data": report}
