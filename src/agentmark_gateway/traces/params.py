"""Query parameters shared by the trace, span, session and metrics routes.

Bad values are 400 ``invalid_query_params`` naming the parameter, the same code
FastAPI's own validation gives.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta

from agentmark_gateway.errors import BadRequest
from agentmark_gateway.traces.filters import Sort, Status
from agentmark_gateway.traces.times import to_ns

_DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_SPACE_OFFSET = re.compile(r"(\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?) (\d{2}:?\d{2})$")


def invalid(message: str) -> BadRequest:
    return BadRequest(message, code="invalid_query_params")


def parse_instant(value: str | None, name: str, *, end: bool = False) -> datetime | None:
    """An ISO date or date-time (UTC when no zone). A bare end date covers its whole day."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        if _DATE_ONLY.match(text):
            day = date.fromisoformat(text)
            moment = datetime.combine(day, time.min, tzinfo=UTC)
            if end:
                # Inclusive bounds: the last instant of the day.
                moment = moment + timedelta(days=1) - timedelta(microseconds=1)
            return moment
        # An unencoded "+01:00" arrives as " 01:00".
        parsed = datetime.fromisoformat(_SPACE_OFFSET.sub(r"\1+\2", text))
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        return parsed.astimezone(UTC)
    except (ValueError, OverflowError) as exc:
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
