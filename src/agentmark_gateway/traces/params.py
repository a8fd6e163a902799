"""Query parameters shared by the trace, span, session and metrics routes.

Bad values are 400 ``invalid_query_params`` naming the parameter, the same code
FastAPI's own validation gives.
"""

from __future__ import annotations

from datetime import datetime

from agentmark_gateway import moments
from agentmark_gateway.errors import BadRequest
from agentmark_gateway.traces.filters import Sort, Status
from agentmark_gateway.traces.times import to_ns


def invalid(message: str) -> BadRequest:
    return BadRequest(message, code="invalid_query_params")


def parse_instant(value: str | None, name: str, *, end: bool = False) -> datetime | None:
    """An ISO date or date-time (UTC when no zone). A bare end date covers its whole day."""
    if value is None or not value.strip():
        return None
    try:
        return moments.instant(value, end=end)
    except ValueError as exc:
        raise invalid(
            f"Invalid query parameters: {name}: not an ISO 8601 date or date-time"
        ) from exc


def date_range(
    start_date: str | None, end_date: str | None
) -> tuple[datetime | None, datetime | None]:
    start = parse_instant(start_date, "start_date")
    end = parse_instant(end_date, "end_date", end=True)
    if start is not None and end is not None and start > end:
        raise invalid("Invalid query parameters: start_date is after end_date")
    return start, end


def ns_or_none(moment: datetime | None) -> int | None:
    return None if moment is None else to_ns(moment)


def parse_status(value: str | None) -> Status | None:
    if value is None or not value.strip():
        return None
    try:
        return Status(value.strip().upper())
    except ValueError as exc:
        raise invalid("Invalid query parameters: status: must be OK, ERROR or UNSET") from exc


def parse_sort(
    sort: str | None,
    sort_by: str | None,
    sort_order: str | None,
    *,
    allowed: dict[str, str],
    default: Sort,
) -> Sort:
    """``sort=-start_time`` (minus for descending), or the reference API's sort_by/sort_order."""
    if sort_order and sort_order.strip().lower() not in ("asc", "desc"):
        raise invalid("Invalid query parameters: sort_order: must be asc or desc")
    if sort and sort.strip():
        text = sort.strip()
        descending = text.startswith("-")
        key = text.lstrip("-+").strip()
    elif sort_by and sort_by.strip():
        key = sort_by.strip()
        descending = (sort_order or "desc").strip().lower() != "asc"
    else:
        return default
    if key not in allowed:
        choices = ", ".join(sorted(set(allowed.values())))
        raise invalid(f"Invalid query parameters: sort: unknown key '{key}' (one of {choices})")
    return Sort(allowed[key], descending)
